"""Test-time augmentation: the network also on mirrored copies of each tile, the detections fused.

Each of `FLIPS` (identity, left-right, up-down, both) is one network pass over the mirrored tile;
its outputs are mirrored back and the passes fused into one `TileOutputs`
(`fused_tile_outputs`): a worm is the set of detections, at most one from each pass, whose
binary masks (probability >= 0.5) overlap the best-scoring one by mask IoU >= `match_iou`; its
score is the sum of their scores over the number of passes (a detection that only one pass makes
scores a quarter of its own), its mask probability their mean, its box their mean. The
foreground probability is the mean of the passes; the embedding (Psi, dense outputs) and seeds
come from the unmirrored pass where it found the worm (Psi is not mirror-equivariant). Four
network passes: about 4x the inference time.
"""

from __future__ import annotations

import numpy as np

from .network_outputs import TileOutputs, tile_outputs

FLIPS = ((False, False), (False, True), (True, False), (True, True))  # (rows, columns) mirrored


def mirrored(x: np.ndarray, rows: bool, cols: bool) -> np.ndarray:
    """x (... x h x w) mirrored up-down (`rows`) and/or left-right (`cols`), contiguous."""
    axes = tuple(a for a, on in ((-2, rows), (-1, cols)) if on)
    return np.ascontiguousarray(np.flip(x, axes)) if axes else x


def mirrored_boxes(boxes: np.ndarray, h: int, w: int, rows: bool, cols: bool) -> np.ndarray:
    """N x 4 boxes (x1, y1, x2, y2, pixel edges) of an h x w image, mirrored the same way."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    if cols:
        boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
    if rows:
        boxes[:, [1, 3]] = h - boxes[:, [3, 1]]
    return boxes


def mirrored_points(xy: np.ndarray, h: int, w: int, rows: bool, cols: bool) -> np.ndarray:
    """N x 2 points (x, y, pixel units, centres at +0.5) of an h x w image, mirrored the same way."""
    xy = np.asarray(xy, np.float32).reshape(-1, 2).copy()
    if cols:
        xy[:, 0] = w - xy[:, 0]
    if rows:
        xy[:, 1] = h - xy[:, 1]
    return xy


def tile_back(tile: TileOutputs, rows: bool, cols: bool, coord_scale: float) -> TileOutputs:
    """The outputs of a pass over a mirrored tile, mirrored back into the tile's own pixels (seed
    embeddings: their two coordinate channels only)."""
    h, w = tile.mask_probability.shape[1:]
    seed_embeddings = tile.seed_embeddings.copy()
    if seed_embeddings.shape[1] >= 2:
        seed_embeddings[:, :2] = mirrored_points(seed_embeddings[:, :2] * coord_scale, h, w, rows, cols) / coord_scale
    return TileOutputs(
        origin=tile.origin, core=tile.core, scores=tile.scores,
        boxes=mirrored_boxes(tile.boxes, h, w, rows, cols),
        mask_probability=mirrored(tile.mask_probability, rows, cols),
        seeds_xy=mirrored_points(tile.seeds_xy, h, w, rows, cols),
        seed_embeddings=seed_embeddings,
        foreground=None if tile.foreground is None else mirrored(tile.foreground, rows, cols),
        embedding=tile.embedding, sigma=tile.sigma, carried=tile.carried,
    )


def _mask_iou(a: np.ndarray, a_box: np.ndarray, b: np.ndarray, b_box: np.ndarray) -> float:
    """IoU of two h x w bool masks, computed inside the union of their boxes (x1, y1, x2, y2)."""
    x1, y1 = int(max(0, np.floor(min(a_box[0], b_box[0])))), int(max(0, np.floor(min(a_box[1], b_box[1]))))
    x2, y2 = int(np.ceil(max(a_box[2], b_box[2]))), int(np.ceil(max(a_box[3], b_box[3])))
    a, b = a[y1:y2, x1:x2], b[y1:y2, x1:x2]
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


def _overlapping(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """M bool: which of boxes b (M x 4) overlap box a (4)."""
    return (np.minimum(a[2], b[:, 2]) > np.maximum(a[0], b[:, 0])) & (np.minimum(a[3], b[:, 3]) > np.maximum(a[1], b[:, 1]))


def fused_tile_outputs(passes: list[TileOutputs], match_iou: float = 0.5) -> TileOutputs:
    """One `TileOutputs` from several passes over the same tile, all in its pixels (the first is
    the unmirrored one): detections grouped greedily by score (each group: the best unassigned
    detection and, from every other pass, its best-overlapping unassigned detection with mask IoU
    >= `match_iou`), then fused as the module docstring says; highest score first."""
    first = passes[0]
    h, w = first.mask_probability.shape[1:]
    binary = [p.mask_probability >= 0.5 for p in passes]
    pool = sorted(((float(s), t, i) for t, p in enumerate(passes) for i, s in enumerate(p.scores)), reverse=True)
    used = [np.zeros(len(p.scores), bool) for p in passes]
    groups = []
    for _, t, i in pool:
        if used[t][i]:
            continue
        used[t][i] = True
        group = {t: i}
        for u, other in enumerate(passes):
            if u == t:
                continue
            near = np.flatnonzero(~used[u] & _overlapping(passes[t].boxes[i], other.boxes))
            ious = [_mask_iou(binary[t][i], passes[t].boxes[i], binary[u][j], other.boxes[j]) for j in near]
            if ious and max(ious) >= match_iou:
                j = int(near[int(np.argmax(ious))])
                used[u][j] = True
                group[u] = j
        groups.append(group)
    n = len(passes)
    scores = np.array([sum(passes[t].scores[i] for t, i in g.items()) / n for g in groups], np.float32)
    order = np.argsort(-scores, kind="stable")
    groups = [groups[k] for k in order]

    def kept_from(g):  # seeds and seed embeddings: the unmirrored pass's where it found the worm
        t = 0 if 0 in g else max(g, key=lambda u: passes[u].scores[g[u]])
        return passes[t], g[t]

    kept = [kept_from(g) for g in groups]

    def stacked(rows, shape, dtype=np.float32):
        return np.stack(rows).astype(dtype) if rows else np.zeros((0, *shape), dtype)

    return TileOutputs(
        origin=first.origin, core=first.core, scores=scores[order],
        boxes=stacked([np.mean([passes[t].boxes[i] for t, i in g.items()], 0) for g in groups], (4,)),
        mask_probability=stacked([np.mean([passes[t].mask_probability[i] for t, i in g.items()], 0) for g in groups], (h, w)),
        seeds_xy=stacked([p.seeds_xy[i] for p, i in kept], (2,)),
        seed_embeddings=stacked([p.seed_embeddings[i] for p, i in kept], (first.seed_embeddings.shape[1],)),
        foreground=None if first.foreground is None else np.mean([p.foreground for p in passes], 0).astype(np.float32),
        embedding=first.embedding, sigma=first.sigma,
        carried=None if first.carried is None else np.array([any(passes[t].carried[i] for t, i in g.items()) for g in groups], bool),
    )


def tta_tile_outputs(network, config, x: np.ndarray, device, min_score: float, dense: bool,
                     origin=(0, 0), core=None, carried: np.ndarray | None = None) -> TileOutputs:
    """`network_outputs.tile_outputs` with test-time augmentation: one pass per `FLIPS` entry over
    the mirrored C x h x w region (carried boxes mirrored with it; dense outputs from the
    unmirrored pass only), mirrored back and fused (`fused_tile_outputs`)."""
    h, w = x.shape[1:]
    passes = []
    for rows, cols in FLIPS:
        boxes = None if carried is None else mirrored_boxes(carried, h, w, rows, cols)
        tile = tile_outputs(network, config, mirrored(x, rows, cols), device, min_score, dense and not (rows or cols),
                            origin, core, boxes)
        passes.append(tile_back(tile, rows, cols, config.coord_scale))
    return fused_tile_outputs(passes)
