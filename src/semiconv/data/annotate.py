"""Turning drawn annotations into per-worm masks.

Coordinates follow napari: (row, col) with pixel (r, c) centred at (r, c). Internally
the tube rasteriser works in continuous coordinates (pixel centre at index + 0.5).
"""

from __future__ import annotations

import numpy as np
from skimage.draw import polygon as draw_polygon


def tube_mask(points: np.ndarray, radii, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre lies within radius of the polyline `points` (L x 2, continuous row/col).

    radii: a scalar or one radius per point. The polyline is resampled every 0.5 px first.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    radii = np.broadcast_to(np.asarray(radii, dtype=float), (len(points),))
    if len(points) > 1:  # densify so that consecutive discs overlap
        seg = np.hypot(*np.diff(points, axis=0).T)
        t = np.concatenate([[0], np.cumsum(seg)])
        samples = np.linspace(0, t[-1], max(2, int(np.ceil(t[-1] / 0.5)) + 1))
        points = np.stack([np.interp(samples, t, points[:, 0]), np.interp(samples, t, points[:, 1])], 1)
        radii = np.interp(samples, t, radii)
    mask = np.zeros(shape, dtype=bool)
    if len(points) == 0:
        return mask
    rmax = radii.max()
    lo = np.maximum(np.floor(points.min(0) - rmax).astype(int), 0)
    hi = np.minimum(np.ceil(points.max(0) + rmax).astype(int) + 1, shape)
    if (hi <= lo).any():
        return mask
    rr, cc = np.mgrid[lo[0]: hi[0], lo[1]: hi[1]]
    centres = np.stack([rr + 0.5, cc + 0.5], -1).reshape(-1, 2)
    inside = np.zeros(len(centres), dtype=bool)
    for start in range(0, len(points), 32):
        chunk = points[start: start + 32]
        d2 = ((centres[:, None, :] - chunk[None]) ** 2).sum(-1)
        inside |= (d2 <= radii[start: start + 32][None] ** 2).any(1)
    mask[lo[0]: hi[0], lo[1]: hi[1]] = inside.reshape(rr.shape)
    return mask


def path_to_mask(points: np.ndarray, width: float, shape: tuple[int, int]) -> np.ndarray:
    """A worm drawn as a path along its body (napari coordinates) with a width in pixels."""
    return tube_mask(np.asarray(points, float)[:, -2:] + 0.5, width / 2.0, shape)


def polygon_to_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A worm drawn as a closed outline (napari coordinates)."""
    points = np.asarray(points, float)[:, -2:]
    mask = np.zeros(shape, dtype=bool)
    rr, cc = draw_polygon(points[:, 0], points[:, 1], shape)
    mask[rr, cc] = True
    return mask


def shapes_to_masks(data: list, shape_types: list[str], widths, shape: tuple[int, int]) -> np.ndarray:
    """napari Shapes (paths/lines with edge widths, polygons/ellipses/rectangles filled) -> N x H x W bool."""
    widths = np.broadcast_to(np.asarray(widths, float), (len(data),))
    masks = []
    for points, kind, width in zip(data, shape_types, widths, strict=True):
        if kind in ("path", "line"):
            m = path_to_mask(points, width, shape)
        else:
            m = polygon_to_mask(points, shape)
        if m.any():
            masks.append(m)
    return np.stack(masks) if masks else np.zeros((0,) + tuple(shape), bool)
