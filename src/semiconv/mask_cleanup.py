"""Clean-up of instance masks after NMS: growth into uncovered foreground, one piece per worm.

Growth: instance masks come from an M x M grid per box and are cut by the native-resolution
foreground, so a worm's mask often stops a pixel or two short of the foreground around it
(blurred borders, clipped tips). Measured on the validation wells with the stage-8 model,
3.3 % of the true worm pixels (of matched worms) were foreground but in no mask at all.
This step hands such pixels to the mask that reaches them first (geodesic growth inside the
foreground, one pixel per step); a pixel two masks reach in the same step stays unclaimed.

One piece: a worm is one connected body, but a mask cut by the foreground can carry islands
(pixels of a neighbouring worm, a stray blob); each mask keeps its largest 8-connected piece.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .data.instances import boxes_from_masks


def dilate4(mask: np.ndarray) -> np.ndarray:
    """One step of 4-connected dilation of a 2-D bool array (pixels outside count as empty):
    the same as scipy.ndimage.binary_dilation with its default cross, without its per-call cost."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def grow_into_foreground(masks: np.ndarray, foreground: np.ndarray, steps: int) -> np.ndarray:
    """masks (N x H x W bool) grown by up to `steps` pixels (4-connected) into `foreground`
    (H x W bool) pixels that no mask covers; returns a new stack, the input is unchanged."""
    if steps <= 0 or not len(masks):
        return masks
    masks = masks.copy()
    H, W = foreground.shape
    windows = [(max(y0 - steps, 0), min(y1 + steps, H), max(x0 - steps, 0), min(x1 + steps, W))
               for x0, y0, x1, y1 in boxes_from_masks(masks).astype(np.int64)]
    free = foreground & ~masks.any(0)
    claims = np.zeros((H, W), np.uint8)
    for _ in range(steps):
        claims[:] = 0
        reached = []
        for mask, (r0, r1, c0, c1) in zip(masks, windows, strict=True):
            new = dilate4(mask[r0:r1, c0:c1]) & free[r0:r1, c0:c1]
            reached.append(new)
            claims[r0:r1, c0:c1] += new
        for mask, new, (r0, r1, c0, c1) in zip(masks, reached, windows, strict=True):
            mask[r0:r1, c0:c1] |= new & (claims[r0:r1, c0:c1] == 1)
        free &= claims != 1
        if not free.any():
            break
    return masks


def keep_largest_component(masks: np.ndarray) -> np.ndarray:
    """masks (N x H x W bool) with each mask reduced to its largest 8-connected piece (the
    first one on a tie); returns a new stack, the input is unchanged."""
    masks = masks.copy()
    eight = np.ones((3, 3), bool)
    for mask, (x0, y0, x1, y1) in zip(masks, boxes_from_masks(masks).astype(np.int64), strict=True):
        window = mask[y0:y1, x0:x1]
        pieces, n = ndi.label(window, eight)
        if n > 1:
            sizes = np.bincount(pieces.ravel())[1:]
            window[:] = pieces == 1 + int(sizes.argmax())
    return masks


def clean_masks(masks: np.ndarray, foreground: np.ndarray | None, growth: int, largest_piece: bool) -> np.ndarray:
    """The clean-up a model's config asks for, in order: growth into `foreground` (H x W bool;
    skipped when None), then the largest piece of each mask. masks: N x H x W bool."""
    if growth > 0 and foreground is not None:
        masks = grow_into_foreground(masks, foreground, growth)
    if largest_piece:
        masks = keep_largest_component(masks)
    return masks
