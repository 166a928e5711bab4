"""Per-worm measurements from each worm's own mask (overlaps kept, so a crossed worm is measured whole).

Length: the mask's skeleton (scikit-image) pruned to its longest path, smoothed
(Gaussian, sigma 2 px along the path) to remove the staircase of pixel steps, plus
the distance from each end of the path to the mask boundary (the skeleton stops short
of the tips by about the local half-width). Mean width = area / length.
Straightness = distance between the path's ends / length (1 for a rod, small when coiled).
Curvature = mean |turning angle| per pixel of length along the smoothed path (rad/px).
Midpoint: the middle of the smoothed path (row, col in image pixels): where the worm's body is
centred; centroid: the mask's centre of mass (steadier from frame to frame: movement is measured on it).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from skimage.measure import regionprops
from skimage.morphology import skeletonize

#: Dead call: mean w1 (Sytox) inside the worm relative to the well's background.
#: Chosen on the BBBC010 training half (ground-truth masks, per-worm accuracy 0.91 at 2.5;
#: 0.88 at 3.5, 0.90 at 2.0): see benchmarks/live_dead.py and docs/benchmarks.md.
DEAD_FLUORESCENCE_RATIO = 2.5
#: Without fluorescence: dead worms are straight rods (per-worm accuracy 0.86 on the training half).
DEAD_STRAIGHTNESS = 0.99


def longest_skeleton_path(mask: np.ndarray) -> np.ndarray:
    """Ordered (row, col) pixels of the longest shortest-path through the mask's skeleton (L x 2)."""
    skeleton = skeletonize(mask)
    coords = np.argwhere(skeleton)
    if len(coords) < 2:
        return coords.astype(float)
    index = -np.ones(mask.shape, dtype=np.int64)
    index[tuple(coords.T)] = np.arange(len(coords))
    rows, cols, weights = [], [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        r2, c2 = coords[:, 0] + dr, coords[:, 1] + dc
        ok = (r2 >= 0) & (r2 < mask.shape[0]) & (c2 >= 0) & (c2 < mask.shape[1])
        j = np.full(len(coords), -1)
        j[ok] = index[r2[ok], c2[ok]]
        has = j >= 0
        rows.append(np.flatnonzero(has))
        cols.append(j[has])
        weights.append(np.full(has.sum(), np.hypot(dr, dc)))
    r, c, w = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
    graph = coo_matrix((w, (r, c)), shape=(len(coords), len(coords))).tocsr()
    # double sweep: farthest node from any node, then farthest from that one
    d0 = dijkstra(graph, directed=False, indices=0)
    a = int(np.nanargmax(np.where(np.isfinite(d0), d0, -1)))
    da, pred = dijkstra(graph, directed=False, indices=a, return_predecessors=True)
    b = int(np.nanargmax(np.where(np.isfinite(da), da, -1)))
    path = [b]
    while path[-1] != a and pred[path[-1]] >= 0:
        path.append(int(pred[path[-1]]))
    return coords[path[::-1]].astype(float)


def _smooth(path: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    if len(path) < 5:
        return path
    return ndi.gaussian_filter1d(path, sigma, axis=0, mode="nearest")


def centre_line(mask: np.ndarray) -> np.ndarray:
    """The worm's centre line: its skeleton's longest path, smoothed (L x 2 float row, col in image
    pixels, from one end to the other; orientation arbitrary). Empty (0 x 2) for an empty mask."""
    mask = np.asarray(mask, dtype=bool)
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return np.zeros((0, 2))
    pad = 2
    r0, c0 = rows.min(), cols.min()
    crop = np.pad(mask[r0:rows.max() + 1, c0:cols.max() + 1], pad)
    path = longest_skeleton_path(crop)
    if len(path) == 0:
        return np.array([[rows.mean(), cols.mean()]])
    return _smooth(path) + np.array([r0 - pad, c0 - pad], dtype=float)


def measure_worm(mask: np.ndarray, pixel_size: float | None = None, fluorescence: np.ndarray | None = None,
                 background: float | None = None) -> dict:
    """Measurements of one worm mask (H x W bool). pixel_size in micrometres per pixel."""
    mask = np.asarray(mask, dtype=bool)
    area = int(mask.sum())
    out = {"area": area}
    if area == 0:
        return {**out, "length_px": 0.0, "mean_width_px": 0.0, "straightness": np.nan, "curvature": np.nan}
    props = regionprops(mask.astype(np.uint8))[0]
    r0, c0, r1, c1 = props.bbox
    pad = 2
    crop = np.pad(mask[r0:r1, c0:c1], pad)
    path = longest_skeleton_path(crop)
    if len(path) >= 2:
        smooth = _smooth(path)
        middle = smooth[len(smooth) // 2]
        steps = np.diff(smooth, axis=0)
        body = float(np.hypot(steps[:, 0], steps[:, 1]).sum())
        dist = ndi.distance_transform_edt(crop)
        ends = float(dist[tuple(path[0].astype(int))] + dist[tuple(path[-1].astype(int))])
        length = body + ends
        chord = float(np.hypot(*(smooth[-1] - smooth[0]))) + ends
        angles = np.arctan2(steps[:, 0], steps[:, 1])
        turning = np.abs(np.angle(np.exp(1j * np.diff(angles)))) if len(angles) > 1 else np.zeros(1)
        curvature = float(turning.sum() / max(body, 1e-6))
    else:  # a blob: its major axis
        length = float(props.axis_major_length)
        chord, curvature = length, 0.0
        middle = np.array(props.centroid) + pad
    out.update({
        "length_px": length,
        "mean_width_px": area / max(length, 1e-6),
        "straightness": min(1.0, chord / max(length, 1e-6)),
        "curvature": curvature,
        "bbox_x1": c0, "bbox_y1": r0, "bbox_x2": c1, "bbox_y2": r1,
        "midpoint_row": float(middle[0] + r0 - pad), "midpoint_col": float(middle[1] + c0 - pad),
        "centroid_row": float(props.centroid[0]), "centroid_col": float(props.centroid[1]),
    })
    if pixel_size:
        out["length_um"] = length * pixel_size
        out["mean_width_um"] = out["mean_width_px"] * pixel_size
        out["area_um2"] = area * pixel_size**2
    if fluorescence is not None:
        values = np.asarray(fluorescence, dtype=np.float64)[mask]
        out["fluorescence_mean"] = float(values.mean())
        out["fluorescence_integrated"] = float(values.sum())
        if background:
            out["fluorescence_ratio"] = float(values.mean() / background)
    return out


def fluorescence_background(fluorescence: np.ndarray, masks: np.ndarray) -> float:
    """Median w1 intensity of the well's non-worm pixels inside the well (the brighter half of the image)."""
    fl = np.asarray(fluorescence, dtype=np.float64)
    worm = np.asarray(masks, dtype=bool).any(0) if len(masks) else np.zeros(fl.shape, bool)
    grown = ndi.binary_dilation(worm, iterations=5)
    rest = fl[~grown]
    return float(np.median(rest)) if rest.size else float(np.median(fl))


def call_dead(row: dict) -> bool:
    """Documented rule: dead if the Sytox ratio exceeds DEAD_FLUORESCENCE_RATIO; without fluorescence,
    dead if the worm is straighter than DEAD_STRAIGHTNESS."""
    if "fluorescence_ratio" in row and np.isfinite(row["fluorescence_ratio"]):
        return bool(row["fluorescence_ratio"] > DEAD_FLUORESCENCE_RATIO)
    return bool(row.get("straightness", 0) > DEAD_STRAIGHTNESS)


def measure_worms(masks: np.ndarray, pixel_size: float | None = None, fluorescence: np.ndarray | None = None,
                  scores: np.ndarray | None = None) -> list[dict]:
    """Rows (one per mask, same order) with measurements, score and the live/dead call."""
    background = fluorescence_background(fluorescence, masks) if fluorescence is not None else None
    rows = []
    for i, mask in enumerate(masks):
        row = {"label": i + 1, **measure_worm(mask, pixel_size, fluorescence, background)}
        if scores is not None:
            row["score"] = float(scores[i])
        row["dead"] = call_dead(row)
        rows.append(row)
    return rows


def z_prime(positive: np.ndarray, negative: np.ndarray) -> float:
    """Z'-factor = 1 - 3 (sd_p + sd_n) / |mean_p - mean_n| (Zhang et al. 1999)."""
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    gap = abs(positive.mean() - negative.mean())
    return float(1 - 3 * (positive.std(ddof=1) + negative.std(ddof=1)) / gap) if gap > 0 else float("-inf")
