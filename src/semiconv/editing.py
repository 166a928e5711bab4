"""Worm-level edits of one plane's overlap-preserving result.

A plane's result is a per-worm stack (N x H x W bool, overlaps kept) with each worm's id (its
label, or track id) and score; the flat label image a viewer shows is derived from it by the
score rule of `semiconv.data.instances.stack_to_labels` (`flat_labels`). Edits made on the flat
view with a label painter (paint, erase, fill) are carried back into the stack by
`apply_label_edits`: a painted pixel joins the painted worm and leaves the worm shown there
before; an erased pixel leaves the worm shown there; a worm hidden under another at a pixel keeps
it (overlaps no edit touched stay shared). A new id painted in becomes a new worm.

Worm-level edits (`delete_worm`, `merge_worms`, `draw_worm`: a worm redrawn or added along a path
with a width, the rule of Shapes annotations, semiconv.data.annotate.path_to_mask) return a new
EditedPlane; `worms_at` lists the worms under a pixel, top first (clicking again cycles).
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
    seeds: np.ndarray | None = None  # N x 2 (row, col); NaN where unknown

    def index(self, worm: int) -> int:
        where = np.flatnonzero(self.ids == int(worm))
        if not where.size:
            raise InputError(f"no worm {worm} here")
        return int(where[0])

    def with_worms(self, keep: np.ndarray, **changes) -> EditedPlane:
        """The plane restricted to the worms `keep` (bool or index array), then `changes` applied."""
        seeds = self.seeds[keep] if self.seeds is not None else None
        fields = dict(masks=self.masks[keep], ids=self.ids[keep], scores=self.scores[keep], edited=self.edited[keep],
                      removed=list(self.removed), seeds=seeds)
        fields.update(changes)
        return EditedPlane(**fields)


def flat_labels(masks: np.ndarray, ids: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
    """H x W uint16 view of a per-worm stack: each pixel shows the id of its highest-scoring worm."""
    order = stack_to_labels(masks, scores)
    lookup = np.concatenate([[0], np.asarray(ids)]).astype(np.uint16)
    return lookup[order]


def apply_label_edits(masks: np.ndarray, ids: np.ndarray, scores: np.ndarray | None, edited_labels: np.ndarray,
                      edited: np.ndarray | None = None, seeds: np.ndarray | None = None) -> EditedPlane:
    """Carry edits of the flat view (`edited_labels`, H x W ints, as changed by the user from
    `flat_labels(masks, ids, scores)`) back into the per-worm stack (see the module docstring).
    `edited`: worms already marked edited (N bool); `seeds`: N x 2 (kept; NaN for new worms).
    Worms erased to nothing are dropped and named in `removed`."""
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
    seeds = np.full((n, 2), np.nan) if seeds is None else np.asarray(seeds, dtype=float).reshape(n, 2)
    before = flat_labels(masks, ids, scores)
    changed = before != after
    if not changed.any():
        return EditedPlane(masks, ids, scores, edited, [], seeds)
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
            seeds = np.concatenate([seeds, [[np.nan, np.nan]]])
    empty = ~masks.reshape(len(masks), -1).any(1)
    removed = [int(k) for k in ids[empty]]
    keep = ~empty
    return EditedPlane(masks[keep], ids[keep], scores[keep], edited[keep], removed, seeds[keep])


def worms_at(plane: EditedPlane, row: int, col: int) -> list[int]:
    """Ids of the worms covering pixel (row, col), the one shown on top first (highest score)."""
    height, width = plane.masks.shape[1:]
    if not (0 <= row < height and 0 <= col < width):
        return []
    here = np.flatnonzero(plane.masks[:, row, col])
    order = np.argsort(-np.nan_to_num(plane.scores[here], nan=-1.0), kind="stable")
    return [int(plane.ids[i]) for i in here[order]]


def delete_worm(plane: EditedPlane, worm: int) -> EditedPlane:
    """The plane without worm `worm` (named in `removed`)."""
    keep = plane.ids != plane.ids[plane.index(worm)]
    out = plane.with_worms(keep)
    out.removed.append(int(worm))
    return out


def merge_worms(plane: EditedPlane, keep: int, other: int) -> EditedPlane:
    """Two fragments of one worm joined: `keep` takes the union of both masks and the higher score;
    `other` goes (named in `removed`)."""
    i, j = plane.index(keep), plane.index(other)
    if i == j:
        raise InputError("merge: choose two different worms")
    masks, scores, edited = plane.masks.copy(), plane.scores.copy(), plane.edited.copy()
    masks[i] |= masks[j]
    scores[i] = np.nanmax([scores[i], scores[j]]) if np.isfinite([scores[i], scores[j]]).any() else np.nan
    edited[i] = True
    rest = np.arange(len(plane.ids)) != j
    out = plane.with_worms(rest, masks=masks[rest], scores=scores[rest], edited=edited[rest])
    out.removed.append(int(other))
    return out


def draw_worm(plane: EditedPlane, path: np.ndarray, width: float, worm: int | None = None) -> tuple[EditedPlane, int]:
    """A worm drawn along its body: `path` (K x 2 row, col, napari coordinates, K >= 2), `width` in
    pixels. With `worm`, that worm is redrawn (its mask replaced: how a merged pair is split, one
    worm at a time); without, a new worm (the next free id, no score) is added. Returns the plane
    and the worm's id; the seed goes to the middle of the path."""
    from .data.annotate import path_to_mask

    path = np.asarray(path, dtype=float).reshape(-1, np.shape(path)[-1] if np.ndim(path) == 2 else 2)[:, -2:]
    if len(path) < 2 or not np.isfinite(path).all():
        raise InputError("draw a path of at least two points along the worm")
    if not width or width <= 0:
        raise InputError(f"the worm's width must be > 0 pixels, not {width}")
    length = np.concatenate([[0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))])
    if length[-1] < 1.0:
        raise InputError("the path is a single point: draw a path of at least two points along the worm")
    mask = path_to_mask(path, width, plane.masks.shape[1:])
    if not mask.any():
        raise InputError("the path lies outside the image")
    middle = [np.interp(length[-1] / 2, length, path[:, 0]), np.interp(length[-1] / 2, length, path[:, 1])]
    seeds = plane.seeds if plane.seeds is not None else np.full((len(plane.ids), 2), np.nan)
    if worm is not None:
        i = plane.index(worm)
        masks, edited, seeds = plane.masks.copy(), plane.edited.copy(), seeds.copy()
        masks[i], edited[i], seeds[i] = mask, True, middle
        return plane.with_worms(slice(None), masks=masks, edited=edited, seeds=seeds), int(worm)
    new = int(plane.ids.max()) + 1 if len(plane.ids) else 1
    out = EditedPlane(np.concatenate([plane.masks, mask[None]]), np.append(plane.ids, new),
                      np.append(plane.scores, np.nan), np.append(plane.edited, True), list(plane.removed),
                      np.concatenate([seeds, [middle]]))
    return out, new


def write_edited_result(folder: Path, stem: str, planes: list[EditedPlane], seeds: list[np.ndarray] | None = None,
                        pixel_size: float | None = None, fluorescence: list[np.ndarray] | None = None,
                        overwrite: bool = False, rois: bool = True,
                        reviewed: list[set] | None = None, track=None) -> tuple[list[Path], list[dict]]:
    """Write an edited result as `semiconv segment` writes its outputs (semiconv.result_files; one
    instance stack per plane of a time-lapse) plus, with `rois`, the ImageJ ROI set: each worm
    measured again from its edited mask with the Sytox image (`fluorescence[t]`, H x W) and pixel
    size the segmentation used, its score kept and an `edited` column. `seeds[t]`: N_t x 2 (row,
    col; NaN for worms drawn by hand; default: each plane's own); `reviewed[t]`: ids of plane t's
    worms marked reviewed (a `reviewed` column). `track` (semiconv.tracking.TrackingSettings): the
    planes are a tracked time-lapse whose ids are track ids, corrections included: the tracking
    columns and `<stem>_tracks.csv` are written as `semiconv segment --track` writes them.
    Returns (files written, table rows); `read_result` reads them back."""
    from .result_files import output_paths, worm_rows, write_outputs
    from .tracking import track_rows

    rows = []
    for t, plane in enumerate(planes):
        plane_seeds = seeds[t] if seeds is not None else plane.seeds
        plane_rows = worm_rows(plane.masks, plane.scores, plane_seeds, t, pixel_size,
                               fluorescence[t] if fluorescence is not None else None, labels=plane.ids)
        for row, edited in zip(plane_rows, plane.edited, strict=True):
            row["edited"] = bool(edited)
            if reviewed is not None:
                row["reviewed"] = row["label"] in reviewed[t]
        rows += plane_rows
    tracks = track_rows(rows, [p.ids for p in planes], pixel_size, track) if track is not None else None
    paths = output_paths(Path(stem), Path(folder), len(planes), tracks=tracks is not None, rois=rois)
    labels = np.stack([flat_labels(p.masks, p.ids, p.scores) for p in planes])
    write_outputs(paths, [p.masks for p in planes], labels[0] if len(planes) == 1 else labels, rows,
                  overwrite=overwrite, tracks=tracks)
    return paths, rows


def read_result(folder: Path, stem: str) -> tuple[list[EditedPlane], list[dict]]:
    """An exported (or `semiconv segment`) result back: each plane's worms (ids = the table's
    labels, scores, seeds, edited) from its instance stack(s) and per-worm CSV, and the rows.
    InputError when the files are missing or disagree."""
    from .io import read_instance_stack
    from .result_files import read_rows

    folder = Path(folder)
    table = folder / f"{stem}_worms.csv"
    stacks = sorted(folder.glob(f"{stem}_t[0-9][0-9][0-9]_instances.tif")) or [folder / f"{stem}_instances.tif"]
    if not table.exists() or not stacks[0].exists():
        raise InputError(f"{folder}: no {stem}_worms.csv with its {stem}_instances.tif")
    rows = read_rows(table)
    planes = []
    for t, path in enumerate(stacks):
        masks = read_instance_stack(path)
        own = [r for r in rows if int(r.get("plane", 0)) == t]
        if len(own) != len(masks):
            raise InputError(f"{path.name}: {len(masks)} worms but {len(own)} rows of {table.name} for plane {t}")
        get = lambda key, own=own: np.array([float(r.get(key, np.nan)) for r in own], dtype=float)  # noqa: E731
        ids = np.array([int(r.get("track_id", r["label"])) for r in own], dtype=np.int64)
        edited = np.array([r.get("edited") is True for r in own], dtype=bool)
        planes.append(EditedPlane(masks, ids, get("score"), edited, [], np.stack([get("seed_row"), get("seed_col")], 1)))
    return planes, rows
