"""Layer 2 of inference: from raw network outputs and thresholds to one Prediction per image.

Plain functions of (`network_outputs.RawOutputs`, `Thresholds`):
    candidates        binary masks of detections at or above a score (mask probability cut by the
                      foreground), tiles merged (a detection belongs to the tile owning its box centre)
    mask_nms          greedy NMS on mask IoU; masks under the minimum area (thresholds.min_area) never kept
    suppress_contained  drop masks lying mostly under higher-scoring ones (fragments)
    detections        candidates, mask_nms (`after_nms`), suppress_contained (`without_contained`):
                      the detections kept
    cleaned           growth into uncovered foreground, largest piece (semiconv.mask_cleanup)
    dense_maps        foreground probability and Psi over the whole image
    postprocess       all of the above, in that order -> Prediction

Threshold calibration (semiconv.calibration) calls `after_nms`, `without_contained` and `cleaned`
too: one order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .config import ModelConfig
from .data.instances import boxes_from_masks, stack_to_labels
from .mask_cleanup import clean_masks
from .network_outputs import RawOutputs, pixel_coordinates


@dataclass
class Prediction:
    """One plane's result. Shapes: masks N x H x W bool, scores N, labels H x W uint16,
    embedding D x H x W (Psi, coordinate channels in units of coord_scale pixels),
    displacement 2 x H x W (dy, dx in pixels: where each pixel votes), seeds N x 2 (row, col),
    boxes N x 4 (x1, y1, x2, y2: the detector's boxes), foreground H x W (probability; models with
    a foreground head), seed_embeddings N x D, sigma (kernel bandwidth), seconds (wall time), kept
    (the network outputs, when asked to keep them)."""

    masks: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    seeds: np.ndarray
    embedding: np.ndarray | None = None
    displacement: np.ndarray | None = None
    foreground: np.ndarray | None = None
    seed_embeddings: np.ndarray | None = None
    sigma: float | None = None
    seconds: float = 0.0
    kept: object | None = None  # semiconv.network_outputs.KeptOutputs: new thresholds without a network pass

    def __len__(self) -> int:
        return len(self.masks)

    def affinity(self, i: int, window: tuple[slice, slice] | None = None) -> np.ndarray:
        """K(seed_i, u) = exp(-||Psi_seed_i - Psi_u|| / sigma) over the image (H x W, in (0, 1]),
        or over `window` (rows, cols) of it only."""
        if self.embedding is None or self.seed_embeddings is None:
            raise ValueError("this model has no embedding (plain head) or dense outputs were not computed")
        if not 0 <= i < len(self.masks):
            raise IndexError(f"worm index {i} out of range (0..{len(self.masks) - 1})")
        psi = self.embedding if window is None else self.embedding[(slice(None), *window)]
        psi = np.asarray(psi, np.float32)  # a stack's planes hold it in float16 (semiconv.packed_masks.hold_in_stack)
        d = np.sqrt(((psi - self.seed_embeddings[i][:, None, None]) ** 2).sum(0))
        return np.exp(-d / self.sigma).astype(np.float32)


@dataclass(frozen=True)
class Thresholds:
    """Every number post-processing uses. score: lowest detection score kept; mask: mask probability;
    foreground: foreground probability (masks are cut by it; models with a foreground head);
    nms: mask IoU above which the lower-scoring mask goes; containment: fraction of a mask's area
    under higher-scoring masks above which it goes (1 = off); min_area: fewest mask pixels a
    detection needs (0 = off); growth (pixels) and largest_piece: the clean-up of masks at or above
    the score threshold."""

    score: float
    mask: float
    foreground: float
    nms: float
    containment: float
    min_area: int = 0
    growth: int = 0
    largest_piece: bool = False

    @classmethod
    def of(cls, config: ModelConfig, **overrides) -> Thresholds:
        """The model's own thresholds; overrides given as None keep the model's value."""
        own = cls(score=config.score_threshold, mask=config.mask_threshold, foreground=config.foreground_threshold,
                  nms=config.mask_nms_threshold, containment=config.mask_containment_threshold,
                  min_area=config.min_mask_area_px, growth=config.foreground_growth, largest_piece=config.keep_largest_piece)
        return replace(own, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def cleans(self) -> bool:
        return self.growth > 0 or self.largest_piece


@dataclass
class Candidates:
    """Detections over the whole image before NMS: masks N x H x W bool, scores N, boxes N x 4,
    seeds_xy N x 2 (x, y pixels), seed_embeddings N x D (absolute coordinates), carried N bool
    (made from a previous frame's worm boxes; None: none were given)."""

    masks: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    seeds_xy: np.ndarray
    seed_embeddings: np.ndarray
    carried: np.ndarray | None = None

    def take(self, index: np.ndarray) -> Candidates:
        return Candidates(self.masks[index], self.scores[index], self.boxes[index], self.seeds_xy[index],
                          self.seed_embeddings[index], None if self.carried is None else self.carried[index])

    @property
    def rank(self) -> np.ndarray:
        """The order of NMS and containment (higher first): the score, with the worms carried from
        the previous frame ahead of every fresh detection (a worm that was one worm a frame ago
        stays one where the detector now finds two crossing worms as one, Tracktor's rule)."""
        return self.scores if self.carried is None else self.scores + self.carried


def binary_masks(mask_probability: np.ndarray, foreground: np.ndarray | None, mask: float, foreground_threshold: float) -> np.ndarray:
    """N x h x w bool: mask probability >= `mask`, cut to foreground probability >= `foreground_threshold`."""
    masks = mask_probability >= mask
    if foreground is not None:
        masks &= (foreground >= foreground_threshold)[None]
    return masks


def candidates(raw: RawOutputs, score: float, mask: float, foreground: float, coord_scale: float) -> Candidates:
    """Binary masks of the detections scoring at least `score`, in image coordinates. Each tile's
    masks are cut by that tile's foreground; with several tiles a detection is kept by the tile
    whose core holds its box centre."""
    H, W = raw.shape
    parts = []
    for tile in raw.tiles:
        keep = tile.scores >= score
        r0, c0 = tile.origin
        boxes = tile.boxes[keep] + np.array([c0, r0, c0, r0], np.float32)
        if raw.tiled:
            cr0, cc0, cr1, cc1 = tile.core
            cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
            own = (cx >= cc0) & (cx < cc1) & (cy >= cr0) & (cy < cr1)
            keep[keep] = own
            boxes = boxes[own]
        tile_masks = binary_masks(tile.mask_probability[keep], tile.foreground, mask, foreground)
        h, w = tile_masks.shape[1:]
        if raw.tiled:
            full = np.zeros((len(tile_masks), H, W), bool)
            full[:, r0:r0 + h, c0:c0 + w] = tile_masks
            tile_masks = full
        seed_embeddings = tile.seed_embeddings[keep].copy()
        if seed_embeddings.shape[1] >= 2:
            seed_embeddings[:, :2] += np.array([c0, r0], np.float32) / coord_scale
        parts.append(Candidates(tile_masks, tile.scores[keep], boxes, tile.seeds_xy[keep] + np.array([c0, r0], np.float32),
                                seed_embeddings, None if tile.carried is None else tile.carried[keep]))
    if len(parts) == 1:
        return parts[0]
    carried = None if any(p.carried is None for p in parts) else np.concatenate([p.carried for p in parts])
    return Candidates(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                        ("masks", "scores", "boxes", "seeds_xy", "seed_embeddings")), carried)


def dense_maps(raw: RawOutputs, coord_scale: float) -> tuple[np.ndarray | None, np.ndarray | None, float | None]:
    """(foreground probability H x W, Psi D x H x W in image coordinates, sigma) over the whole
    image, each tile contributing its core; None where the tiles have no such output."""
    if not raw.tiled:
        tile = raw.tiles[0]
        return tile.foreground, tile.embedding, tile.sigma
    H, W = raw.shape
    first = raw.tiles[0]
    foreground = np.zeros((H, W), np.float32) if first.foreground is not None else None
    psi = np.zeros((first.embedding.shape[0], H, W), np.float32) if first.embedding is not None else None
    for tile in raw.tiles:
        (r0, c0), (cr0, cc0, cr1, cc1) = tile.origin, tile.core
        inner = np.s_[cr0 - r0: cr1 - r0, cc0 - c0: cc1 - c0]
        if foreground is not None:
            foreground[cr0:cr1, cc0:cc1] = tile.foreground[inner]
        if psi is not None:
            part = tile.embedding[(slice(None),) + inner].copy()
            part[0] += c0 / coord_scale
            part[1] += r0 / coord_scale
            psi[:, cr0:cr1, cc0:cc1] = part
    return foreground, psi, first.sigma


def _boxes_and_areas(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per mask of an N x H x W bool stack: its box (N x 4 int: x1, y1, x2, y2, end-exclusive;
    zeros when empty, see `boxes_from_masks`) and its area (N, pixels)."""
    boxes = boxes_from_masks(masks).astype(np.int64)
    return boxes, np.count_nonzero(masks, axis=(1, 2))


def _intersection(masks: np.ndarray, boxes: np.ndarray, i: int, j: int) -> int:
    """Pixels shared by masks i and j, counted inside the overlap of their boxes only."""
    x0, x1 = max(boxes[i, 0], boxes[j, 0]), min(boxes[i, 2], boxes[j, 2])
    y0, y1 = max(boxes[i, 1], boxes[j, 1]), min(boxes[i, 3], boxes[j, 3])
    if y0 >= y1 or x0 >= x1:
        return 0
    return int(np.count_nonzero(masks[i, y0:y1, x0:x1] & masks[j, y0:y1, x0:x1]))


def mask_nms(masks: np.ndarray, scores: np.ndarray, threshold: float, min_area: int = 1) -> np.ndarray:
    """Indices kept by greedy NMS on mask IoU (highest score first); a mask of fewer than
    max(min_area, 1) pixels is never kept (an empty one least of all). masks: N x H x W bool."""
    boxes, areas = _boxes_and_areas(masks)
    min_area = max(min_area, 1)

    def iou_above(i: int, j: int) -> bool:
        inter = _intersection(masks, boxes, i, j)
        return inter > 0 and inter / (areas[i] + areas[j] - inter) > threshold

    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if areas[i] >= min_area and not any(iou_above(i, j) for j in kept):
            kept.append(int(i))
    return np.asarray(kept, dtype=np.int64)


def suppress_contained(masks: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept when, highest score first, a mask is dropped if more than `threshold` of its
    area lies under the masks already kept (fragments of a worm found twice; a crossing worm
    shares only a small part of its area). threshold >= 1 keeps everything non-empty.
    masks: N x H x W bool."""
    order = np.argsort(-scores, kind="stable")
    boxes, areas = _boxes_and_areas(masks)
    union = np.zeros(masks.shape[1:], bool)
    kept: list[int] = []
    for i in order:
        if areas[i] == 0:
            continue
        x0, y0, x1, y1 = boxes[i]
        own = masks[i, y0:y1, x0:x1]
        if threshold < 1 and np.count_nonzero(own & union[y0:y1, x0:x1]) > threshold * areas[i]:
            continue
        kept.append(int(i))
        union[y0:y1, x0:x1] |= own
    return np.asarray(kept, dtype=np.int64)


def nms_order(masks: np.ndarray, scores: np.ndarray, nms: float, containment: float, min_area: int = 1) -> np.ndarray:
    """Indices that survive mask NMS (masks of at least `min_area` pixels) and then containment
    suppression, highest score first."""
    if not len(masks):
        return np.zeros(0, np.int64)
    kept = mask_nms(masks, scores, nms, min_area)
    kept = kept[suppress_contained(masks[kept], scores[kept], containment)]
    return kept[np.argsort(-scores[kept], kind="stable")]


def after_nms(raw: RawOutputs, thresholds: Thresholds, coord_scale: float) -> Candidates:
    """Candidates at the score threshold with masks of at least thresholds.min_area pixels that
    survive mask NMS, highest rank first (`Candidates.rank`; containment not yet applied:
    calibration reuses this for every containment value)."""
    found = candidates(raw, thresholds.score, thresholds.mask, thresholds.foreground, coord_scale)
    return found.take(nms_order(found.masks, found.rank, thresholds.nms, 1.0, thresholds.min_area))


def without_contained(found: Candidates, thresholds: Thresholds) -> Candidates:
    """`found` (highest rank first) without the masks lying mostly under higher-ranked ones
    (`suppress_contained` at thresholds.containment); order kept."""
    return found.take(suppress_contained(found.masks, found.rank, thresholds.containment))


def detections(raw: RawOutputs, thresholds: Thresholds, coord_scale: float) -> Candidates:
    """The detections kept: candidates at the score threshold, mask NMS, then containment
    suppression (both in `Candidates.rank` order); highest score first. Masks not yet cleaned."""
    found = without_contained(after_nms(raw, thresholds, coord_scale), thresholds)
    return found.take(np.argsort(-found.scores, kind="stable"))


def cleaned(masks: np.ndarray, scores: np.ndarray, foreground: np.ndarray | None, thresholds: Thresholds,
            clean_from: float) -> np.ndarray:
    """The masks (N x H x W bool) with those scoring at least `clean_from` cleaned: grown into
    uncovered foreground (probability >= thresholds.foreground) and cut to their largest piece, as
    the thresholds say; a new array, the others unchanged."""
    masks = masks.copy()
    cleaning = scores >= clean_from
    if thresholds.cleans and cleaning.any():
        allowed = foreground >= thresholds.foreground if foreground is not None else None
        masks[cleaning] = clean_masks(masks[cleaning], allowed, thresholds.growth, thresholds.largest_piece)
    return masks


def postprocess(raw: RawOutputs, thresholds: Thresholds, coord_scale: float, clean_from: float | None = None) -> Prediction:
    """The Prediction for one image: `detections`, then the clean-up of masks scoring at least
    `clean_from` (default: the score threshold; `evaluate` keeps every detection for COCO AP but
    cleans only those its threshold passes: `cleaned`), labels, seeds and the dense maps.
    `coord_scale`: the model's unit of Psi's coordinate channels (pixels)."""
    H, W = raw.shape
    found = detections(raw, thresholds, coord_scale)
    foreground, psi, sigma = dense_maps(raw, coord_scale)
    masks = cleaned(found.masks, found.scores, foreground, thresholds, thresholds.score if clean_from is None else clean_from)
    seeds_xy = found.seeds_xy
    seeds = np.stack([seeds_xy[:, 1] - 0.5, seeds_xy[:, 0] - 0.5], 1) if len(seeds_xy) else np.zeros((0, 2))
    pred = Prediction(masks.reshape(-1, H, W), found.scores, found.boxes.reshape(-1, 4),
                      stack_to_labels(masks.reshape(-1, H, W), found.scores), seeds.astype(np.float32), foreground=foreground)
    if psi is not None:
        coords = pixel_coordinates(H, W) / coord_scale
        pred.embedding = psi
        pred.displacement = ((psi[1::-1] - coords[1::-1]) * coord_scale).astype(np.float32)
        pred.seed_embeddings = found.seed_embeddings
        pred.sigma = sigma
    return pred
