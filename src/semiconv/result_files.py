"""Layer 4 of inference: what a segmentation leaves behind. The one per-worm table (used by
`semiconv segment`, `semiconv batch`, the Export widget and the napari features), the output file
names, and writing them (atomically; nothing replaced without `overwrite`).

Per input image `<stem>`:
    <stem>_instances.tif   N x H x W uint8, one plane per worm, overlaps kept
                           (stacks: <stem>_t000_instances.tif, ... one per plane)
    <stem>_labels.tif      H x W (or T x H x W) uint16; where worms overlap the higher score wins
    <stem>_rois.zip        with `rois`: an ImageJ/Fiji ROI set, one ROI per worm (semiconv.rois)
    <stem>_tracks.csv      stacks segmented with tracking: the same rows by track, then frame, with
                           track id, frame, speed and movement (semiconv.tracking)
    <stem>_worms.csv       the per-worm table, one row per plane of the instance stack(s), same order
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from .io import write_label_image, write_text, write_tiff
from .measure import measure_worms

#: The per-worm table's columns, in order; a table holds those it has values for.
#: bbox: the mask's extent (x2, y2 end-exclusive pixels); seed: the detection's seed (row, col);
#: midpoint: the middle of the worm's centre line (row, col); centroid: the mask's centre of mass;
#: lengths in pixels (and micrometres with a pixel size); fluorescence with a fluorescence image;
#: dead: see semiconv.measure.call_dead; track_id ... dead_by_movement: stacks segmented with
#: tracking (semiconv.tracking); edited: the worm's mask was changed by hand (semiconv.editing);
#: reviewed, doubt, doubt_reasons: the review queue (semiconv.review).
TABLE_COLUMNS = (
    "plane", "label", "score", "edited", "reviewed", "doubt", "doubt_reasons", "area", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "seed_row", "seed_col",
    "midpoint_row", "midpoint_col", "centroid_row", "centroid_col", "length_px", "mean_width_px", "straightness", "curvature", "length_um", "mean_width_um", "area_um2",
    "fluorescence_mean", "fluorescence_integrated", "fluorescence_ratio", "dead",
    "track_id", "frame", "speed_px_per_frame", "speed_um_per_frame", "moving", "dead_by_movement",
)
BOX_COLUMNS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")


def worm_rows(masks: np.ndarray, scores: np.ndarray | None = None, seeds: np.ndarray | None = None, plane: int = 0,
              pixel_size: float | None = None, fluorescence: np.ndarray | None = None, labels=None) -> list[dict]:
    """One table row per mask of an N x H x W bool stack, same order: plane, label (default i + 1;
    or `labels`), score, area, box, seed (N x 2 row, col) and the measurements of semiconv.measure.
    pixel_size in micrometres per pixel; fluorescence H x W (the Sytox channel)."""
    rows = []
    for i, measured in enumerate(measure_worms(masks, pixel_size, fluorescence, scores)):
        row = {"plane": plane, "label": int(labels[i]) if labels is not None else i + 1}
        if scores is not None:
            row["score"] = float(scores[i])
        row.update({k: v for k, v in measured.items() if k not in ("label", "score")})
        for key in BOX_COLUMNS:
            row.setdefault(key, math.nan)  # an empty mask has no extent
        if seeds is not None:
            row["seed_row"], row["seed_col"] = float(seeds[i, 0]), float(seeds[i, 1])
        rows.append(row)
    return rows


def prediction_rows(preds, pixel_size: float | None = None, fluorescence: list | None = None) -> list[dict]:
    """Table rows of per-plane Predictions (plane t's worms, then plane t + 1's)."""
    return [row for t, p in enumerate(preds) for row in
            worm_rows(p.masks, p.scores, p.seeds, t, pixel_size, fluorescence[t] if fluorescence is not None else None)]


def table_columns(rows: list[dict]) -> list[str]:
    """The columns of these rows: TABLE_COLUMNS present, in order, then any others (e.g. well, image);
    with no rows, the columns every prediction has (a header for an empty table)."""
    if not rows:
        return list(TABLE_COLUMNS[:10])
    present = {k for row in rows for k in row}
    extra = [k for row in rows for k in row if k not in TABLE_COLUMNS]
    return [c for c in TABLE_COLUMNS if c in present] + list(dict.fromkeys(extra))


def table_features(rows: list[dict]) -> dict[str, list]:
    """The table as columns (what napari layers take as `features`); missing values are NaN."""
    return {c: [row.get(c, math.nan) for row in rows] for c in table_columns(rows)}


def _cell(value):
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else round(float(value), 4)
    return value


def rows_to_csv(rows: list[dict], columns: list[str] | None = None) -> str:
    """CSV text of table rows (floats to 4 decimals, NaN as empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns or table_columns(rows), extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def _parse_cell(text: str):
    if text == "":
        return math.nan
    if text in ("True", "False"):
        return text == "True"
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def read_rows(path: Path) -> list[dict]:
    """The rows of a per-worm (or tracks) CSV written by `rows_to_csv`: numbers, booleans and NaN
    (empty cells) back as values."""
    with open(path, newline="") as f:
        return [{k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(f)]


def output_paths(image_path: Path, out_dir: Path, planes: int, tracks: bool = False, rois: bool = False) -> list[Path]:
    """Instance stack file(s) (one per plane), the label image, the ROI set (with `rois`), the
    tracks CSV (with `tracks`), then the per-worm CSV."""
    stem = Path(image_path).stem
    if planes == 1:
        inst = [out_dir / f"{stem}_instances.tif"]
    else:
        inst = [out_dir / f"{stem}_t{t:03d}_instances.tif" for t in range(planes)]
    roi_set = [out_dir / f"{stem}_rois.zip"] if rois else []
    track_csv = [out_dir / f"{stem}_tracks.csv"] if tracks else []
    return inst + [out_dir / f"{stem}_labels.tif"] + roi_set + track_csv + [out_dir / f"{stem}_worms.csv"]


def track_table_columns(rows: list[dict]) -> list[str]:
    """Columns of the tracks CSV: track id and frame first, then the per-worm table's (no plane)."""
    head = ["track_id", "frame"]
    return head + [c for c in table_columns(rows) if c not in (*head, "plane")]


def plane_ids(rows: list[dict], planes: int) -> list[np.ndarray]:
    """Each plane's worm labels as the outputs show them (the track id in a tracked time-lapse),
    from the per-worm table's rows (plane by plane, in the order of each plane's stack)."""
    ids = [[] for _ in range(planes)]
    for row in rows:
        ids[int(row["plane"])].append(int(row.get("track_id", row["label"])))
    return [np.asarray(i, dtype=np.int64) for i in ids]


def write_outputs(paths: list[Path], stacks: list[np.ndarray], labels: np.ndarray, rows: list[dict],
                  overwrite: bool = False, tracks: list[dict] | None = None) -> list[Path]:
    """Write the files of `output_paths`: the instance stack(s) (N x H x W each, as uint8), the
    label image (uint16; T x H x W as ImageJ time frames), the ROI set (if among `paths`; semiconv.rois), the tracks CSV (rows
    ordered by track, with `tracks`) and the per-worm CSV; the per-worm CSV last, so its presence
    marks a complete output."""
    by_kind = {kind: [p for p in paths if Path(p).name.endswith(kind)]
               for kind in ("_instances.tif", "_labels.tif", "_rois.zip", "_tracks.csv", "_worms.csv")}
    for target, masks in zip(by_kind["_instances.tif"], stacks, strict=True):
        write_tiff(target, np.asarray(masks).astype(np.uint8), overwrite=overwrite)
    # a single image's label image is 2-D: a 3-D one is a time-lapse's
    write_label_image(by_kind["_labels.tif"][0], labels, time_lapse=np.ndim(labels) == 3, overwrite=overwrite)
    if by_kind["_rois.zip"]:
        from .rois import write_roi_set

        ids = plane_ids(rows, len(stacks))
        write_roi_set(by_kind["_rois.zip"][0], stacks, ids, overwrite=overwrite)
    if tracks is not None:
        write_text(by_kind["_tracks.csv"][0], rows_to_csv(tracks, track_table_columns(tracks)), overwrite=overwrite)
    write_text(by_kind["_worms.csv"][0], rows_to_csv(rows), overwrite=overwrite)
    return paths
