"""`semiconv segment`: files in, per-worm outputs out (instances stack, label image, CSV)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from .data.generic import read_image
from .errors import InputError
from .inference import Prediction, SemiConvModel
from .io import write_text, write_tiff

CSV_COLUMNS = ["plane", "label", "score", "area", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "seed_row", "seed_col"]


def prediction_rows(pred: Prediction, plane: int = 0) -> list[dict]:
    """One row per mask of the prediction, in stack order (label = plane index + 1)."""
    rows = []
    for i in range(len(pred)):
        x1, y1, x2, y2 = (float(v) for v in pred.boxes[i])
        rows.append({
            "plane": plane, "label": i + 1, "score": round(float(pred.scores[i]), 4), "area": int(pred.masks[i].sum()),
            "bbox_x1": round(x1, 1), "bbox_y1": round(y1, 1), "bbox_x2": round(x2, 1), "bbox_y2": round(y2, 1),
            "seed_row": round(float(pred.seeds[i, 0]), 1), "seed_col": round(float(pred.seeds[i, 1]), 1),
        })
    return rows


def rows_to_csv(rows: list[dict], columns=CSV_COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def output_paths(image_path: Path, out_dir: Path, planes: int) -> list[Path]:
    stem = image_path.stem
    if planes == 1:
        inst = [out_dir / f"{stem}_instances.tif"]
    else:
        inst = [out_dir / f"{stem}_t{t:03d}_instances.tif" for t in range(planes)]
    return inst + [out_dir / f"{stem}_labels.tif", out_dir / f"{stem}_worms.csv"]


def planes_of(image: np.ndarray, path: Path) -> list[np.ndarray]:
    """2-D image (or RGB) -> one plane; T x H x W stack -> T planes."""
    if image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (3, 4)):
        return [image]
    if image.ndim == 3:
        return list(image)
    raise InputError(f"{path}: expected a 2-D image or a 3-D stack, got shape {image.shape}")


def segment_file(model: SemiConvModel, path: Path, out_dir: Path, overwrite: bool = False, progress=None,
                 score_threshold=None, mask_threshold=None) -> tuple[list[Path], int, float]:
    """Segment one file; writes nothing unless every plane succeeded. Returns (files, worms, seconds)."""
    image = read_image(path)
    planes = planes_of(image, path)
    targets = output_paths(path, out_dir, len(planes))
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise InputError(f"{existing[0]}: exists already (use --overwrite to replace)")
    preds = []
    for t, plane in enumerate(planes):
        try:
            preds.append(model.predict(plane, score_threshold=score_threshold, mask_threshold=mask_threshold, dense=False))
        except InputError as exc:
            where = f" plane {t}" if len(planes) > 1 else ""
            raise InputError(f"{path}{where}: {exc}") from exc
        if progress:
            progress(t + 1, len(planes))
    rows = [row for t, p in enumerate(preds) for row in prediction_rows(p, t)]
    out_dir.mkdir(parents=True, exist_ok=True)
    for target, pred in zip(targets[:-2], preds, strict=True):
        write_tiff(target, pred.masks.astype(np.uint8), overwrite=overwrite)
    labels = preds[0].labels if len(preds) == 1 else np.stack([p.labels for p in preds])
    write_tiff(targets[-2], labels, overwrite=overwrite)
    write_text(targets[-1], rows_to_csv(rows), overwrite=overwrite)
    return targets, len(rows), sum(p.seconds for p in preds)
