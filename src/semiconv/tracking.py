"""Worm identities across the frames of a time-lapse (T x H x W) stack, and movement.

Each frame is segmented with the boxes of the previous frame's worms carried into it
(`carried_boxes`, the scheme of Tracktor, Bergmann et al. 2019): the network scores, regresses and
segments each carried box as well as its own proposals, and a carried worm outranks fresh
detections in NMS. Where two worms cross, the detector alone often finds one box, or one mask
pairing an arm of each worm; a box carried from the frame before, when the two were apart, gives
each worm its own mask (whole per-worm masks, overlaps kept). Linking one frame's worms
to the next frame's is a linear assignment problem solved by laptrack (Jaqaman et al. 2008, the
TrackMate scheme) with cost 1 - IoU of the two worms' masks, each grown by `tolerance_px` (so that
a worm that moved sideways by a few pixels still overlaps itself). Because every worm keeps its
whole mask where it crosses another, a crossing pair's masks overlap each other only at the
crossing, while each overlaps its own mask of the next frame along its whole body: identities do not
swap at crossings. A worm missing for up to `max_gap` frames (hidden, out of focus, missed) is joined
across the gap with the same cost (laptrack's gap closing). No splitting or merging: a worm is one
track. Where the detector finds one worm as two pieces (a worm folded sharply, or lying along
another), each piece would carry a track and the two would trade the worm's identity: pieces of one
worm of the frame before are joined into one worm before linking, and before the frame's boxes are
carried on (`fragment_groups`, `tracked_frame`).

Movement is measured on the worm mask's centroid (the per-worm table's centroid columns,
semiconv.measure): speed, and a frame step is still when the centroid moves less than `still_px`
per frame (steadier than the centre line's midpoint, which jumps when a mask's skeleton changes:
docs/benchmarks.md compares them).
The Tracks layer draws the centre line's midpoint. Alive or dead by movement (the
principle of lifespan machines): a worm that stays still for at least `still_frames` frame steps
until the end of the recording is called dead from the first frame of that stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi
from scipy import sparse

from .data.instances import boxes_from_masks, stack_to_labels
from .errors import InputError
from .tracking_settings import TrackingSettings

if TYPE_CHECKING:
    from .postprocess import Prediction


def grown_masks(masks: np.ndarray, grow_px: int) -> sparse.csr_matrix:
    """N x (H*W) sparse rows: each mask of an N x H x W bool stack grown by `grow_px` pixels
    (4-connected steps), as 1.0 entries."""
    masks = np.asarray(masks, dtype=bool)
    n, height, width = masks.shape
    which, pixel = np.divmod(np.flatnonzero(masks), height * width)
    r, c = np.divmod(pixel, width)
    bounds = np.searchsorted(which, np.arange(n + 1))
    rows, cols = [], []
    for i in range(n):
        rr, cc = r[bounds[i]:bounds[i + 1]], c[bounds[i]:bounds[i + 1]]
        if rr.size == 0:
            continue
        if grow_px:
            r0, c0 = rr.min() - grow_px, cc.min() - grow_px
            crop = np.zeros((rr.max() - r0 + grow_px + 1, cc.max() - c0 + grow_px + 1), bool)
            crop[rr - r0, cc - c0] = True
            crop = ndi.binary_dilation(crop, iterations=grow_px)
            rr, cc = np.nonzero(crop)
            rr, cc = rr + r0, cc + c0
            inside = (rr >= 0) & (rr < height) & (cc >= 0) & (cc < width)
            rr, cc = rr[inside], cc[inside]
        rows.append(np.full(rr.size, i))
        cols.append(rr * width + cc)
    if not rows:
        return sparse.csr_matrix((n, height * width), dtype=np.float32)
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sparse.csr_matrix((np.ones(r.size, np.float32), (r, c)), shape=(n, height * width))


def mask_iou(a: sparse.csr_matrix, b: sparse.csr_matrix) -> np.ndarray:
    """Na x Nb IoU of two sets of sparse mask rows (`grown_masks`)."""
    inter = np.asarray((a @ b.T).todense(), dtype=np.float64)
    area_a = np.asarray(a.sum(1), dtype=np.float64).reshape(-1, 1)
    area_b = np.asarray(b.sum(1), dtype=np.float64).reshape(1, -1)
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def carried_boxes(masks: np.ndarray, settings: TrackingSettings = TrackingSettings()) -> np.ndarray | None:
    """The boxes (K x 4 float32: x1, y1, x2, y2 pixels, grown by settings.carry_margin_px on every
    side) of one frame's worms (N x H x W bool) that the next frame's segmentation is given
    (SemiConvModel.predict's `carried_boxes`); None when settings.carry_boxes is off."""
    if not settings.carry_boxes:
        return None
    boxes = boxes_from_masks(masks)
    boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
    return boxes + np.float32(settings.carry_margin_px) * np.array([-1, -1, 1, 1], np.float32)


def fragment_groups(masks: np.ndarray, previous: np.ndarray | None,
                    settings: TrackingSettings = TrackingSettings()) -> list[list[int]]:
    """This frame's worms (N x H x W bool) in groups that are one worm each: pieces of one worm of the
    frame before (`previous`, M x H x W bool) are grouped, every other worm is a group of its own.

    A detector may find one worm as two overlapping pieces (a worm folded sharply, a worm lying along
    another); tracked, each piece then carries a track of its own and the pieces trade the worm's
    identity. Two masks are pieces of one worm when they overlap by >= settings.fragment_overlap of the
    smaller one's area, >= settings.fragment_on_previous of the smaller one lies on the worm of the
    frame before that their union overlaps best (IoU, that worm grown by tolerance_px), that worm is
    worm-sized (at most fragment_area_ratio times the frame before's median area: not two worms found
    as one) and the union is at most fragment_area_ratio times its area (not two worms). Pairs are
    joined greedily, best-overlapping union first, until none is left. Groups in index order."""
    masks = np.asarray(masks, dtype=bool)
    groups = [[i] for i in range(len(masks))]
    if not settings.join_fragments or previous is None or len(previous) == 0 or len(masks) < 2:
        return groups
    rows = grown_masks(masks, 0)
    before = None
    while len(groups) > 1:
        area = np.asarray(rows.sum(1), dtype=np.float64).ravel()
        overlap = np.triu((rows @ rows.T.tocsr()).toarray().astype(np.float64), 1)
        pairs = [(i, j) for i, j in zip(*np.nonzero(overlap), strict=True)
                 if overlap[i, j] >= settings.fragment_overlap * min(area[i], area[j])]
        if not pairs:
            break
        if before is None:  # the frame before's worms, only once two masks overlap enough
            previous = np.asarray(previous, dtype=bool)
            grown = grown_masks(previous, settings.tolerance_px)
            before_area = np.asarray(grown.sum(1), dtype=np.float64).ravel()
            before = grown.T.tocsr()  # pixels x M: products with it need no conversion
            worm_area = previous.reshape(len(previous), -1).sum(1).astype(np.float64)
            worm_sized = worm_area <= settings.fragment_area_ratio * np.median(worm_area)
        on_before = (rows @ before).toarray().astype(np.float64)
        best = None
        for i, j in pairs:
            small = i if area[i] <= area[j] else j
            union_area = area[i] + area[j] - overlap[i, j]
            union = (rows[i] + rows[j]).sign()
            union_on = (union @ before).toarray().astype(np.float64).ravel()
            iou = union_on / (union_area + before_area - union_on)
            p = int(iou.argmax())
            if (not worm_sized[p] or union_area > settings.fragment_area_ratio * worm_area[p]
                    or on_before[small, p] < settings.fragment_on_previous * area[small]):
                continue
            if best is None or iou[p] > best[0]:
                best = (iou[p], int(i), int(j), union)
        if best is None:
            break
        _, i, j, union = best
        groups[i] += groups.pop(j)
        rows = sparse.vstack([union if k == i else rows[k] for k in range(rows.shape[0]) if k != j]).tocsr()
    return [sorted(g) for g in groups]


def fragments_joined(pred: Prediction, previous: np.ndarray | None,
                     settings: TrackingSettings = TrackingSettings()) -> Prediction:
    """`pred` (one frame of a time-lapse) with the pieces of one worm of the frame before (`previous`
    masks, M x H x W bool) joined into one worm (`fragment_groups`): its mask is the pieces' union,
    its box theirs, score, seed and seed embedding the best-scoring piece's; worms highest score
    first, labels made again. `pred` itself when nothing is joined."""
    groups = fragment_groups(pred.masks, previous, settings)
    if len(groups) == len(pred.masks):
        return pred
    kept = np.array([max(g, key=lambda i: pred.scores[i]) for g in groups])
    order = np.argsort(-pred.scores[kept], kind="stable")
    groups, kept = [groups[k] for k in order], kept[order]
    masks = np.stack([pred.masks[g].any(0) for g in groups])
    boxes = np.stack([np.concatenate([pred.boxes[g, :2].min(0), pred.boxes[g, 2:].max(0)]) for g in groups])
    scores = pred.scores[kept]
    return replace(pred, masks=masks, scores=scores, boxes=boxes.astype(pred.boxes.dtype),
                   labels=stack_to_labels(masks, scores), seeds=pred.seeds[kept],
                   seed_embeddings=None if pred.seed_embeddings is None else pred.seed_embeddings[kept])


def tracked_frame(pred: Prediction, previous: np.ndarray | None,
                  settings: TrackingSettings = TrackingSettings()) -> tuple[Prediction, np.ndarray | None]:
    """One frame of a tracked time-lapse once segmented: `pred` with the pieces of one worm of the frame
    before joined (`fragments_joined`; `previous`: that frame's masks, None for a first frame), and
    the boxes to carry into the next frame's segmentation (`carried_boxes`; None when not carried)."""
    pred = fragments_joined(pred, previous, settings)
    return pred, carried_boxes(pred.masks, settings)


def joined_in_sequence(preds: Sequence[Prediction], settings: TrackingSettings = TrackingSettings()) -> list[Prediction]:
    """A tracked time-lapse's frames (`Prediction`s in frame order) with `fragments_joined` applied
    frame by frame, as segmentation with tracking does (e.g. after new thresholds)."""
    out: list[Prediction] = []
    for pred in preds:
        out.append(fragments_joined(pred, out[-1].masks if out else None, settings))
    return out


def check_frames(stacks: Sequence[np.ndarray]) -> tuple[int, int]:
    """The common frame size (H, W) of per-frame N_t x H x W mask stacks; InputError otherwise."""
    shapes = {tuple(np.shape(m)[1:]) for m in stacks}
    if any(np.ndim(m) != 3 for m in stacks):
        raise InputError("tracking: each frame's masks must be an N x H x W stack")
    if len(shapes) > 1:
        raise InputError(f"tracking: frames of different sizes ({', '.join(map(str, sorted(shapes)))})")
    return shapes.pop() if shapes else (0, 0)


def link_frames(stacks: Sequence[np.ndarray], settings: TrackingSettings = TrackingSettings()) -> list[np.ndarray]:
    """Track ids (1, 2, ... in order of first appearance) of each worm of each frame.

    stacks[t]: frame t's N_t x H x W bool masks. Returns one int array of N_t ids per frame."""
    from laptrack import LapTrack

    check_frames(stacks)
    counts = [len(m) for m in stacks]
    if sum(counts) == 0 or len(stacks) == 1:
        return [np.arange(1, n + 1) for n in counts] if len(stacks) == 1 else [np.zeros(0, int) for _ in stacks]
    grown = [grown_masks(m, settings.tolerance_px) for m in stacks]
    ious: dict[tuple[int, int], np.ndarray] = {}

    def cost(u: np.ndarray, v: np.ndarray) -> float:
        (t1, i), (t2, j) = sorted([(int(u[0]), int(u[1])), (int(v[0]), int(v[1]))])
        if (t1, t2) not in ious:
            ious[t1, t2] = mask_iou(grown[t1], grown[t2])
        return 1.0 - float(ious[t1, t2][i, j])

    coords = [np.column_stack([np.full(n, t), np.arange(n)]).astype(float) for t, n in enumerate(counts)]
    cutoff = 1.0 - settings.min_iou
    # Ending a track (or a segment, before gap closing) and starting another costs more than any
    # allowed link (costs are < 1), whatever the spread of the costs.
    tracker = LapTrack(metric=cost, cutoff=cutoff, gap_closing_metric=cost,
                       gap_closing_cutoff=cutoff if settings.max_gap else False,
                       gap_closing_max_frame_count=settings.max_gap + 1,
                       splitting_cutoff=False, merging_cutoff=False,
                       track_start_cost=1.0, track_end_cost=1.0, segment_start_cost=1.0, segment_end_cost=1.0)
    graph = tracker.predict(coords)
    ids = [np.zeros(n, dtype=np.int64) for n in counts]
    tracks = [sorted(c) for c in _components(graph)]
    for number, nodes in enumerate(sorted(tracks, key=lambda nodes: nodes[0]), start=1):
        for t, i in nodes:
            ids[t][i] = number
    return ids


def _components(graph) -> list[set]:
    import networkx as nx

    return list(nx.weakly_connected_components(graph))


def tracked_labels(stacks: Sequence[np.ndarray], scores: Sequence[np.ndarray], track_ids: Sequence[np.ndarray]) -> np.ndarray:
    """T x H x W uint16 label image whose label is the track id (0 background); where worms overlap
    the higher score wins (the rule of semiconv.data.instances.stack_to_labels)."""
    height, width = check_frames(stacks)
    labels = np.zeros((len(stacks), height, width), dtype=np.uint16)
    for t, (masks, frame_scores, ids) in enumerate(zip(stacks, scores, track_ids, strict=True)):
        lookup = np.concatenate([[0], np.asarray(ids)]).astype(np.uint16)
        labels[t] = lookup[stack_to_labels(masks, frame_scores)]
    return labels


def track_rows(rows: list[dict], track_ids: Sequence[np.ndarray],
               pixel_size: float | None = None, settings: TrackingSettings = TrackingSettings()) -> list[dict]:
    """The per-worm table's rows (`semiconv.result_files.prediction_rows`: frame t's worms in order, then
    t + 1's) with the tracking columns added in place (track_id, frame, speed_px_per_frame,
    speed_um_per_frame with a pixel size, moving, dead_by_movement); returned ordered by track,
    then frame.

    speed: the mask centroid's displacement (the table's centroid columns) from the track's
    previous observation divided by the frames between (NaN at a track's first frame); moving:
    speed >= still_px; dead_by_movement: see the module docstring."""
    counts = [len(ids) for ids in track_ids]
    if len(rows) != sum(counts):
        raise ValueError(f"{len(rows)} table rows for {sum(counts)} tracked worms")
    frames = np.repeat(np.arange(len(counts)), counts)
    ids = np.concatenate(track_ids) if rows else np.zeros(0, int)
    points = np.array([[row.get("centroid_row", np.nan), row.get("centroid_col", np.nan)] for row in rows],
                      dtype=float).reshape(-1, 2)
    for row, t, track in zip(rows, frames, ids, strict=True):
        row.update(track_id=int(track), frame=int(t), speed_px_per_frame=np.nan, moving=np.nan)
    for track in np.unique(ids):
        index = np.flatnonzero(ids == track)  # in frame order
        still = []
        for i, j in zip(index[:-1], index[1:], strict=True):
            speed = float(np.hypot(*(points[j] - points[i]))) / (frames[j] - frames[i])
            rows[j]["speed_px_per_frame"] = speed
            if pixel_size:
                rows[j]["speed_um_per_frame"] = speed * pixel_size
            rows[j]["moving"] = bool(speed >= settings.still_px) if np.isfinite(speed) else np.nan
            still.append(bool(speed < settings.still_px))
        stop = len(still)
        while stop > 0 and still[stop - 1]:
            stop -= 1
        dead_from = frames[index[stop]] if len(still) - stop >= settings.still_frames else None
        for i in index:
            rows[i]["dead_by_movement"] = bool(dead_from is not None and frames[i] >= dead_from)
    return sorted(rows, key=lambda row: (row["track_id"], row["frame"]))


def _present(track_ids: Sequence[np.ndarray], track: int) -> bool:
    return any((np.asarray(ids) == track).any() for ids in track_ids)


def swap_tracks(track_ids: Sequence[np.ndarray], a: int, b: int, from_frame: int = 0) -> list[np.ndarray]:
    """Identity correction: tracks `a` and `b` exchange identities from `from_frame` on."""
    if a == b or not (_present(track_ids, a) and _present(track_ids, b)):
        raise InputError(f"swap: tracks {a} and {b} must be two existing tracks")
    out = []
    for t, ids in enumerate(track_ids):
        ids = np.array(ids)
        if t >= from_frame:
            is_a, is_b = ids == a, ids == b
            ids[is_a], ids[is_b] = b, a
        out.append(ids)
    return out


def join_tracks(track_ids: Sequence[np.ndarray], keep: int, other: int) -> list[np.ndarray]:
    """Identity correction: track `other` is the same worm as `keep` (it takes its id); refused
    when both are present in one frame (one worm cannot be two detections)."""
    if keep == other or not (_present(track_ids, keep) and _present(track_ids, other)):
        raise InputError(f"join: tracks {keep} and {other} must be two existing tracks")
    both = [t for t, ids in enumerate(track_ids) if (ids == keep).any() and (ids == other).any()]
    if both:
        raise InputError(f"join: tracks {keep} and {other} are both in frame {both[0]}: they are two worms")
    return [np.where(np.asarray(ids) == other, keep, ids) for ids in track_ids]


def split_track(track_ids: Sequence[np.ndarray], track: int, from_frame: int) -> list[np.ndarray]:
    """Identity correction: track `track` becomes a new track (the next free id) from `from_frame` on."""
    frames = [t for t, ids in enumerate(track_ids) if (np.asarray(ids) == track).any()]
    if not any(t >= from_frame for t in frames) or not any(t < from_frame for t in frames):
        raise InputError(f"split: track {track} is not present both before and from frame {from_frame}")
    new = 1 + max(int(np.max(ids)) for ids in track_ids if len(ids))
    return [np.where((np.asarray(ids) == track) & (t >= from_frame), new, ids) for t, ids in enumerate(track_ids)]
