"""Segment one image file into its outputs (`semiconv segment`, and each image of `semiconv batch`).

file -> planes (semiconv.planes) -> Prediction per plane (SemiConvModel.predict) -> per-worm table
and tracks (`tabulate`, also what the Segment widget uses) -> files (semiconv.result_files.write_outputs).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .allocator import trim_freed_memory
from .data.generic import read_image
from .errors import InputError
from .inference import SemiConvModel
from .packed_masks import hold_in_stack
from .planes import grey_planes, split_planes
from .result_files import output_paths, prediction_rows, write_outputs
from .scale import rescale_for_next_plane, scale_notes, segment_plane
from .tracking import TrackingSettings, link_frames, track_rows, tracked_frame, tracked_labels

#: A long stack gives its freed temporary memory back every this many planes (malloc_trim: 20-40 ms).
TRIM_EVERY_PLANES = 10


def hold_stack_plane(pred, index: int, dense: bool = False, labels: bool = True):
    """Plane `index` (0-based) of a stack, shrunk to what the stack's results hold until they are
    written or shown (semiconv.packed_masks.hold_in_stack: masks as bits; with `dense` the maps in
    float16; a label image only with `labels`); every TRIM_EVERY_PLANES planes the freed temporary
    memory of the planes goes back to the system, else the heap grows with the stack."""
    held = hold_in_stack(pred, dense=dense, labels=labels)
    if (index + 1) % TRIM_EVERY_PLANES == 0:
        trim_freed_memory()
    return held


class SegmentNote(UserWarning):
    """Something the user should read about how an image was segmented (the CLI prints it as a note)."""


class ScaleNote(SegmentNote):
    """The scale an image was segmented at, or a warning that its worms look unlike the model's."""


def tabulate(preds: list, pixel_size: float | None = None, fluorescence: list | None = None,
             track: TrackingSettings | None = None, extra_columns: dict | None = None) -> tuple[list[dict], list | None, list | None]:
    """Predictions of a plane or a stack -> (the per-worm table's rows, plane by plane;
    with `track`, each plane's track ids and the tracks table (rows by track, then frame);
    else None, None). `fluorescence[t]`: plane t's Sytox image; `extra_columns` go in every row."""
    rows = prediction_rows(preds, pixel_size, fluorescence)
    for row in rows:
        row.update(extra_columns or {})
    if track is None:
        return rows, None, None
    ids = link_frames([p.masks for p in preds], track)
    return rows, ids, track_rows(rows, ids, pixel_size, track)


def segment_file(model: SemiConvModel, path: Path, out_dir: Path, overwrite: bool = False, progress=None,
                 score_threshold=None, mask_threshold=None, fluorescence: Path | None = None,
                 pixel_size: float | None = None, extra_columns: dict | None = None,
                 rescale: float | str | None = None,
                 track: TrackingSettings | None = None, rois: bool = False) -> tuple[list[Path], list[dict], float]:
    """Segment one file (a 2-D image or a T x H x W stack) and write its outputs; writes nothing
    unless every plane succeeded. `fluorescence`: its Sytox image (same planes), measured in each
    worm (and fed to models that take it); `pixel_size` in micrometres; `extra_columns` are added to
    every table row (e.g. well, image); `rescale`: None, a factor or "auto" (semiconv.scale:
    segmented at the model's training scale; the factor chosen and worms far from the model's
    scale are reported as ScaleNote warnings); `track`: link a stack's worms across frames
    (semiconv.tracking; each frame is segmented with the previous frame's worm boxes carried into
    it, and pieces of one worm of the frame before joined): the label image then holds track ids
    and <stem>_tracks.csv is written;
    `rois`: also <stem>_rois.zip, one ImageJ/Fiji ROI per worm (semiconv.rois).
    Returns (files written, table rows, seconds)."""
    path = Path(path)
    planes = split_planes(read_image(path), name=str(path))
    feed = model.config.takes_fluorescence
    fl_planes = None
    if fluorescence is not None:
        fl_planes = grey_planes(read_image(fluorescence), name=str(fluorescence))
        if len(fl_planes) != len(planes) or fl_planes[0].shape[:2] != planes[0].shape[:2]:
            raise InputError(f"{fluorescence}: does not match {path.name} ({len(fl_planes)} planes of "
                             f"{fl_planes[0].shape[:2]} vs {len(planes)} of {planes[0].shape[:2]})")
    elif feed:
        raise InputError(f"{path}: model {model.name!r} also takes the fluorescence image: give it with --fluorescence")
    targets = output_paths(path, out_dir, len(planes), tracks=track is not None, rois=rois)
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise InputError(f"{existing[0]}: exists already (use --overwrite to replace)")
    preds, carried, previous = [], None, None
    for t, plane in enumerate(planes):
        where = f" plane {t}" if len(planes) > 1 else ""
        try:
            pred, factor, warning = segment_plane(model, plane, rescale, pixel_size,
                                                  fluorescence=fl_planes[t] if feed else None,
                                                  score_threshold=score_threshold, mask_threshold=mask_threshold, dense=False,
                                                  carried_boxes=carried)
        except (InputError, ValueError) as exc:
            raise InputError(f"{path}{where}: {exc}") from exc
        if track:  # pieces of one worm joined, this frame's boxes carried into the next
            pred, carried = tracked_frame(pred, previous, track)
            previous = pred.masks
        # a long stack keeps only what its outputs need, its masks as bits, until they are written
        pred.foreground = None
        if len(planes) > 1:
            pred = hold_stack_plane(pred, t, labels=not track)  # a tracked stack's label image is made from the track ids
        preds.append(pred)
        rescale = rescale_for_next_plane(rescale, factor, pred)
        for note in scale_notes(factor, warning):
            warnings.warn(f"{path.name}{where}: {note}", ScaleNote, stacklevel=2)
        if progress:
            progress(t + 1, len(planes))
    rows, ids, tracks = tabulate(preds, pixel_size, fl_planes, track, extra_columns)
    stacks = [p.masks for p in preds]
    if track is not None:
        if len(planes) == 1:
            warnings.warn(f"{path.name}: one frame: each worm is its own track", SegmentNote, stacklevel=2)
        labels = tracked_labels(stacks, [p.scores for p in preds], ids)
        labels = labels[0] if len(planes) == 1 else labels
    else:
        labels = np.asarray(preds[0].labels if len(preds) == 1 else [p.labels for p in preds])
    write_outputs(targets, stacks, labels, rows, overwrite=overwrite, tracks=tracks)
    return targets, rows, sum(p.seconds for p in preds)
