"""Synthetic bright-field worm images with exact, overlapping instance masks.

Worms are smooth random curves (length, width, curvature drawn per worm,
tapered at both ends) rasterised as unions of discs along the centre line.
Some worms are made to cross an earlier worm, some to lie alongside one
(touching). The image mimics BBBC010's bright-field channel: a bright round
well with vignetting, dark corners, dark worms whose overlaps are darker,
blur and shot-like noise, stored as uint16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .annotate import tube_mask
from .instances import boxes_from_masks


@dataclass
class SyntheticConfig:
    """Parameters of the generator (lengths and widths in pixels)."""

    n_worms: tuple[int, int] = (8, 14)
    length: tuple[float, float] = (70.0, 160.0)
    width: tuple[float, float] = (6.0, 10.0)
    max_curvature: float = 0.035  # radians per pixel of body length
    p_cross: float = 0.35
    p_touch: float = 0.15
    well: bool = True
    background: float = 2600.0
    worm_contrast: tuple[float, float] = (0.45, 0.7)
    noise: float = 0.03
    blur: float = 1.0


@dataclass
class SyntheticImage:
    """image: H x W uint16; masks: N x H x W bool; boxes: N x 4; centerlines: list of (L x 2) row/col."""

    image: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    centerlines: list
    widths: np.ndarray


def _centerline(rng, start, heading, length, max_curv, step=1.0):
    n = max(int(length / step), 2)
    curvature = rng.uniform(-max_curv, max_curv)
    drift = rng.normal(0, max_curv / 4, size=n)
    points = np.empty((n, 2))
    pos = np.asarray(start, dtype=float)
    angle = heading
    for i in range(n):
        points[i] = pos
        curvature = np.clip(curvature + drift[i], -max_curv, max_curv)
        angle += curvature * step
        pos = pos + step * np.array([np.sin(angle), np.cos(angle)])
    return points


def _rasterise(points, width, shape):
    """Mask of a tapered tube around `points` (L x 2, continuous row/col)."""
    t = np.linspace(0, 1, len(points))
    radius = 0.5 * width * np.clip(np.sin(np.pi * t) ** 0.35, 0.35, 1.0)
    return tube_mask(points, radius, shape)


def _well_profile(shape, rng, enabled):
    h, w = shape
    if not enabled:
        return np.ones(shape)
    rr, cc = np.mgrid[0:h, 0:w]
    cy, cx = h / 2 + rng.normal(0, h * 0.02), w / 2 + rng.normal(0, w * 0.02)
    half = 0.5 * min(h, w) * rng.uniform(0.8, 0.9)
    # rounded square (superellipse), as the wells of a multi-well plate look
    d = ((np.abs(rr - cy) / half) ** 6 + (np.abs(cc - cx) / half) ** 6) ** (1 / 6)
    inside = 1.0 / (1.0 + np.exp((d - 1.0) * 60))
    vignette = 1.0 - 0.2 * (np.hypot(rr - cy, cc - cx) / half) ** 2
    return np.clip(inside * vignette, 0.03, 1.0)


def generate(shape=(256, 256), seed: int = 0, config: SyntheticConfig | None = None) -> SyntheticImage:
    """Generate one synthetic bright-field image with overlapping worm masks (deterministic per seed)."""
    config = config or SyntheticConfig()
    rng = np.random.default_rng(seed)
    h, w = shape
    scale = min(1.0, min(h, w) / 400)
    n = int(rng.integers(config.n_worms[0], config.n_worms[1] + 1))
    n = max(1, int(round(n * max(scale, 0.3) ** 1.0))) if min(h, w) < 400 else n
    masks, lines, widths = [], [], []
    attempts = 0
    while len(masks) < n and attempts < n * 20:
        attempts += 1
        length = rng.uniform(*config.length) * max(scale, 0.5)
        width = rng.uniform(*config.width)
        mode = rng.random()
        if lines and mode < config.p_cross:
            other = lines[rng.integers(len(lines))]
            anchor = other[rng.integers(len(other) // 4, 3 * len(other) // 4)]
            heading = rng.uniform(0, 2 * np.pi)
            back = length * rng.uniform(0.3, 0.7)
            start = anchor - back * np.array([np.sin(heading), np.cos(heading)])
        elif lines and mode < config.p_cross + config.p_touch:
            other = lines[rng.integers(len(lines))]
            i = rng.integers(1, len(other) - 1)
            tangent = other[i + 1] - other[i - 1]
            heading = np.arctan2(tangent[0], tangent[1])
            normal = np.array([np.cos(heading), -np.sin(heading)])
            start = other[i] + normal * width * rng.choice([-1, 1])
            start = start - tangent / (np.linalg.norm(tangent) + 1e-6) * length * 0.3
        else:
            start = rng.uniform([0.2 * h, 0.3 * w], [0.8 * h, 0.7 * w])
            heading = rng.uniform(0, 2 * np.pi)
        points = _centerline(rng, start, heading, length, config.max_curvature)
        inside = (points[:, 0] >= 2) & (points[:, 0] < h - 2) & (points[:, 1] >= 2) & (points[:, 1] < w - 2)
        if inside.mean() < 0.98:
            continue
        mask = _rasterise(points, width, shape)
        if mask.sum() < 20:
            continue
        if masks:
            overlap = (np.stack(masks) & mask).sum(axis=(1, 2))
            if (overlap > 0.5 * mask.sum()).any():
                continue
        masks.append(mask)
        lines.append(points)
        widths.append(width)
    stack = np.stack(masks) if masks else np.zeros((0, h, w), dtype=bool)

    profile = _well_profile(shape, rng, config.well)
    transmission = np.ones(shape)
    for mask in stack:
        contrast = rng.uniform(*config.worm_contrast)
        body = ndi.gaussian_filter(mask.astype(float), 0.8)
        core = ndi.gaussian_filter(ndi.binary_erosion(mask, iterations=2).astype(float), 0.8)
        # dark cuticle outline, lighter gut: how worms look in bright-field
        transmission *= 1.0 - contrast * (body - 0.45 * core)
    image = config.background * profile * transmission
    image = ndi.gaussian_filter(image, config.blur) if config.blur > 0 else image
    image = image * (1 + rng.normal(0, config.noise, size=shape)) + rng.normal(0, 8, size=shape) + 90
    image = np.clip(image, 0, 65535).astype(np.uint16)
    return SyntheticImage(image, stack, boxes_from_masks(stack), lines, np.asarray(widths, dtype=float))


def generate_stack(n: int, shape=(256, 256), seed: int = 0, config: SyntheticConfig | None = None) -> list[SyntheticImage]:
    """`n` images with seeds seed, seed+1, ..."""
    return [generate(shape, seed + i, config) for i in range(n)]
