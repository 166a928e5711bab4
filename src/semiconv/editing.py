"""Worm-level edits of one plane's overlap-preserving result.

A plane's result is a per-worm stack (N x H x W bool, overlaps kept) with each worm's id (its
label, or track id) and score; the flat label image a viewer shows is derived from it by the
score rule of `semiconv.data.instances.stack_to_labels` (`flat_labels`). Edits made on the flat
view with a label painter (paint, erase, fill) are carried back into the stack by
`apply_label_edits`: a painted pixel joins the painted worm and leaves the worm shown there
before; an erased pixel leaves the worm shown there; a worm hidden under another at a pixel keeps
it (overlaps no edit touched stay shared). A new id painted in becomes a new worm.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.instances import stack_to_labels
from .errors import InputError


@dataclass
class EditedPlane:
    """masks: N x H x W bool; ids: N worm ids (> 0, unique); scores: N (NaN for a worm drawn by
    hand); edited: N bool, the worm's mask differs from the segmentation's; removed: ids of
    worms erased to nothing."""

    masks: np.ndarray
    ids: np.ndarray
    scores: np.ndarray
    edited: np.ndarray
    removed: list[int]


def flat_labels(masks: np.ndarray, ids: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
    """H x W uint16 view of a per-worm stack: each pixel shows the id of its highest-scoring worm."""
    order = stack_to_labels(masks, scores)
    lookup = np.concatenate([[0], np.asarray(ids)]).astype(np.uint16)
    return lookup[order]


def apply_label_edits(masks: np.ndarray, ids: np.ndarray, scores: np.ndarray | None, edited_labels: np.ndarray,
                      edited: np.ndarray | None = None) -> EditedPlane:
    """Carry edits of the flat view (`edited_labels`, H x W ints, as changed by the user from
    `flat_labels(masks, ids, scores)`) back into the per-worm stack (see the module docstring).
    `edited`: worms already marked edited (N bool). Worms erased to nothing are dropped and named
    in `removed`."""
    masks = np.array(masks, dtype=bool, copy=True)
    ids = np.asarray(ids, dtype=np.int64)
    n = len(masks)
    scores = np.full(n, np.nan) if scores is None else np.asarray(scores, dtype=float)
    edited = np.zeros(n, bool) if edited is None else np.array(edited, dtype=bool)
    after = np.asarray(edited_labels)
    if after.shape != masks.shape[1:]:
        raise InputError(f"the labels ({after.shape}) no longer match their worm stack ({masks.shape[1:]}): "
                         "the layer was resized or replaced; segment again")
    if len(set(ids.tolist())) != n or (n and ids.min() <= 0):
        raise InputError("worm ids must be unique and > 0")
    before = flat_labels(masks, ids, scores)
    changed = before != after
    if not changed.any():
        return EditedPlane(masks, ids, scores, edited, [])
    plane_of = {int(k): i for i, k in enumerate(ids)}
    shown = before[changed]
    for worm in np.unique(shown[shown > 0]):  # the worm shown there before loses the changed pixels
        i = plane_of[int(worm)]
        masks[i][changed & (before == worm)] = False
        edited[i] = True
    painted = after[changed]
    for worm in np.unique(painted[painted > 0]):
        where = changed & (after == worm)
        if int(worm) in plane_of:
            i = plane_of[int(worm)]
            masks[i][where] = True
            edited[i] = True
        else:
            masks = np.concatenate([masks, where[None]])
            ids = np.append(ids, worm)
            scores = np.append(scores, np.nan)
            edited = np.append(edited, True)
    empty = ~masks.reshape(len(masks), -1).any(1)
    removed = [int(k) for k in ids[empty]]
    keep = ~empty
    return EditedPlane(masks[keep], ids[keep], scores[keep], edited[keep], removed)


def write_edited_result(folder: Path, stem: str, planes: list[EditedPlane], seeds: list[np.ndarray] | None = None,
                        pixel_size: float | None = None, fluorescence: list[np.ndarray] | None = None,
                        overwrite: bool = False, rois: bool = True) -> tuple[list[Path], list[dict]]:
    """Write an edited result as `semiconv segment` writes its outputs (semiconv.outputs; one
    instance stack per plane of a time-lapse) plus, with `rois`, the ImageJ ROI set: each worm
    measured again from its edited mask with the Sytox image (`fluorescence[t]`, H x W) and pixel
    size the segmentation used, its score kept and an `edited` column. `seeds[t]`: N_t x 2 (row,
    col; NaN for worms drawn by hand). Returns (files written, table rows)."""
    from .outputs import output_paths, worm_rows, write_outputs

    rows = []
    for t, plane in enumerate(planes):
        plane_rows = worm_rows(plane.masks, plane.scores, seeds[t] if seeds is not None else None, t, pixel_size,
                               fluorescence[t] if fluorescence is not None else None, labels=plane.ids)
        for row, edited in zip(plane_rows, plane.edited, strict=True):
            row["edited"] = bool(edited)
        rows += plane_rows
    paths = output_paths(Path(stem), Path(folder), len(planes), rois=rois)
    labels = np.stack([flat_labels(p.masks, p.ids, p.scores) for p in planes])
    write_outputs(paths, [p.masks for p in planes], labels[0] if len(planes) == 1 else labels, rows, overwrite=overwrite)
    return paths, rows
