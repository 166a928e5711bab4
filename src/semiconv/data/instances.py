"""Overlap-preserving instance stacks: conversions and derived boxes."""

from __future__ import annotations

import numpy as np


def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """Boxes (N x 4 float32, x1, y1, x2, y2) in continuous pixel coordinates.

    Pixel (r, c) covers [c, c+1] x [r, r+1], so a box encloses whole pixels:
    x2 = last column + 1. Empty masks give a zero box.
    """
    masks = np.asarray(masks, dtype=bool)
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for i, mask in enumerate(masks):
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if rows.size:
            boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def labels_to_stack(labels: np.ndarray) -> np.ndarray:
    """Label image (H x W ints, 0 = background) to a stack (N x H x W bool), ids ascending."""
    labels = np.asarray(labels)
    ids = np.unique(labels)
    ids = ids[ids != 0]
    if ids.size == 0:
        return np.zeros((0,) + labels.shape, dtype=bool)
    return labels[None] == ids[:, None, None]


def stack_to_labels(masks: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
    """Stack (N x H x W bool) to a uint16 label image; label i+1 is plane i.

    Where masks overlap the plane with the higher score wins (the earlier plane
    when no scores are given).
    """
    masks = np.asarray(masks, dtype=bool)
    labels = np.zeros(masks.shape[1:], dtype=np.uint16)
    if len(masks) == 0:
        return labels
    order = np.arange(len(masks)) if scores is None else np.argsort(-np.asarray(scores), kind="stable")
    for i in order[::-1]:  # paint lowest priority first, highest last
        labels[masks[i]] = i + 1
    return labels


def overlap_pixels(masks: np.ndarray) -> int:
    """Number of pixels covered by two or more instances."""
    if len(masks) < 2:
        return 0
    return int((np.asarray(masks, dtype=np.uint8).sum(axis=0) > 1).sum())


def overlapping_instances(masks: np.ndarray) -> np.ndarray:
    """Bool vector (N): instance shares at least one pixel with another."""
    masks = np.asarray(masks, dtype=bool)
    if len(masks) < 2:
        return np.zeros(len(masks), dtype=bool)
    count = masks.sum(axis=0, dtype=np.int32)
    return np.array([(count[m] > 1).any() for m in masks], dtype=bool)
