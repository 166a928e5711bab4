"""`semiconv data check`: validate a dataset folder and summarise what it holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .bbbc010 import VALIDATION_WELLS, Bbbc010Folder, is_bbbc010_folder, require_data_folder
from .generic import is_annotated_folder, list_annotated_folder, load_pair
from .instances import overlap_pixels


@dataclass
class DatasetReport:
    """What a dataset folder holds, and every problem met while reading it."""

    root: str
    layout: str
    wells: int = 0
    images: int = 0
    channels: dict = field(default_factory=dict)
    worms: int = 0
    wells_with_overlaps: int = 0
    overlap_pixels: int = 0
    image_shapes: list = field(default_factory=list)
    train_wells: int = 0
    validation_wells: int = 0
    problems: list = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"dataset: {self.root} ({self.layout} layout)",
            f"wells: {self.wells}  ({self.train_wells} training, {self.validation_wells} validation)",
            f"images: {self.images}  channels: " + ", ".join(f"{k}={v}" for k, v in self.channels.items()),
            f"image shapes: {', '.join(self.image_shapes)}",
            f"worms: {self.worms}",
            f"wells with overlapping worms: {self.wells_with_overlaps}  (overlap pixels: {self.overlap_pixels})",
            f"problems: {len(self.problems)}",
        ]
        out += [f"  - {p}" for p in self.problems]
        return out


def check_dataset(root: str | Path, progress=None) -> DatasetReport:
    """Read every image and mask under `root`; count and report problems (never raises for a bad well)."""
    root = require_data_folder(root)
    if is_bbbc010_folder(root):
        return _check_bbbc010(root, progress)
    if is_annotated_folder(root):
        return _check_annotated(root, progress)
    raise InputError(f"{root}: neither the BBBC010 layout (BBBC010_v1_images/) nor an annotated folder (images/, annotations/)")


def _check_bbbc010(root: Path, progress) -> DatasetReport:
    folder = Bbbc010Folder(root)
    report = DatasetReport(str(root), "BBBC010", problems=list(folder.problems))
    shapes = set()
    bf = fl = 0
    iterator = progress(folder.wells) if progress else folder.wells
    for well in iterator:
        try:
            item = folder.load(well)
        except InputError as exc:
            report.problems.append(f"well {well}: {exc}; well skipped")
            continue
        report.wells += 1
        bf += 1
        fl += item.fluorescence is not None
        shapes.add("x".join(map(str, item.brightfield.shape)))
        report.worms += len(item.masks)
        pixels = overlap_pixels(item.masks)
        report.overlap_pixels += pixels
        report.wells_with_overlaps += pixels > 0
        if well in VALIDATION_WELLS:
            report.validation_wells += 1
        else:
            report.train_wells += 1
    report.images = bf + fl
    report.channels = {"brightfield (w2)": bf, "fluorescence (w1)": fl}
    report.image_shapes = sorted(shapes)
    return report


def _check_annotated(root: Path, progress) -> DatasetReport:
    pairs, problems = list_annotated_folder(root)
    report = DatasetReport(str(root), "annotated", problems=problems)
    shapes = set()
    iterator = progress(pairs) if progress else pairs
    for image_path, ann_path in iterator:
        try:
            item = load_pair(image_path, ann_path)
        except InputError as exc:
            report.problems.append(f"{exc}; image skipped")
            continue
        report.wells += 1
        report.images += 1
        shapes.add("x".join(map(str, item.image.shape)))
        report.worms += len(item.masks)
        pixels = overlap_pixels(item.masks)
        report.overlap_pixels += pixels
        report.wells_with_overlaps += pixels > 0
        report.train_wells += 1
    report.channels = {"image": report.images}
    report.image_shapes = sorted(shapes)
    return report


def summarise_counts(report: DatasetReport) -> dict:
    return {k: v for k, v in report.__dict__.items() if not isinstance(v, (list, np.ndarray))}
