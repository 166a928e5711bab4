"""Turn a data folder into training/validation samples and run the shared loop."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import ModelConfig, TrainConfig
from ..data.bbbc010 import is_bbbc010_folder
from ..data.folds import fold_split, held_out_split
from ..data.generic import is_annotated_folder, list_annotated_folder, load_pair
from ..data.packed import is_packed_file, open_wells
from ..errors import InputError
from ..inference import resolve_device
from .loop import train
from .samples import Sample, crawled_samples, samples_from_annotated, samples_from_bbbc010


@dataclass
class TrainingJob:
    model_config: ModelConfig
    train: list[Sample]
    val: list[Sample]
    problems: list[str] = field(default_factory=list)
    sources: dict = field(default_factory=dict)

    def run(self, train_config: TrainConfig, out: Path, device: str = "auto", resume: bool = False, init_state=None,
            progress=None, should_stop=None, fresh_modules: tuple[str, ...] = (), started_from: dict | None = None,
            keep_validated: bool = False):
        meta = {"data": self.sources, **({"started_from": started_from} if started_from else {})}
        return train(self.train, self.val, self.model_config, train_config, out, resolve_device(device), resume=resume,
                     init_state=init_state, fresh_modules=fresh_modules, extra_meta=meta,
                     progress=progress, should_stop=should_stop, keep_validated=keep_validated)


def prepare_training(data: str | Path, model_config: ModelConfig, all_wells: bool = False, val_fraction: float = 0.2,
                     seed: int = 0, fold: int | None = None, crawled_frames: tuple[int, ...] = ()) -> TrainingJob:
    """Load a BBBC010-layout folder or packed file (`semiconv data pack`; validation on the fixed
    validation wells, or on cross-validation fold `fold` of semiconv.data.folds) or an annotated
    folder (random held-out fraction: `semiconv.data.folds.held_out_split`). `all_wells` and
    `fold` are refused for an annotated folder. `crawled_frames` (`samples.crawled_frames_asked`):
    each training image's worms also crawl, those frames added as crawled samples (training only)."""
    data = Path(data)
    if is_bbbc010_folder(data) or is_packed_file(data):
        folder = open_wells(data)
        train_wells, val_wells = folder.split() if fold is None else fold_split(fold, folder.wells)
        if all_wells:
            train_wells = train_wells + val_wells
        if not train_wells:
            raise InputError(f"{data}: no usable wells with masks")
        train = samples_from_bbbc010(folder, train_wells, model_config)
        if crawled_frames:
            loaded = ((name, folder.load(name)) for name in train_wells)
            train += with_crawled(((name, well.brightfield, well.masks) for name, well in loaded), model_config,
                                  crawled_frames)
        return TrainingJob(model_config, train, samples_from_bbbc010(folder, val_wells, model_config), folder.problems,
                           {"folder": str(data), "train": train_wells, "validation": val_wells})
    if fold is not None or all_wells:
        flag = "--fold" if fold is not None else "--all-wells"
        raise InputError(f"{flag} needs BBBC010 wells (a BBBC010-layout folder or a packed .npz), not {data}")
    if is_annotated_folder(data):
        pairs, problems = list_annotated_folder(data)
        if not pairs:
            raise InputError(f"{data}: no annotated images")
        items = [load_pair(i, a) for i, a in pairs]
        train_idx, held_idx = held_out_split(len(items), val_fraction, seed)
        tr = [items[i] for i in train_idx]
        va = [items[i] for i in held_idx]
        train = samples_from_annotated(tr, model_config)
        if crawled_frames:
            train += with_crawled([(i.name, i.image, i.masks) for i in tr], model_config, crawled_frames)
        return TrainingJob(model_config, train, samples_from_annotated(va, model_config), problems,
                           {"folder": str(data), "train": [i.name for i in tr], "validation": [i.name for i in va]})
    raise InputError(f"{data}: neither a BBBC010-layout folder, a packed .npz nor an annotated folder (images/, annotations/)")


def with_crawled(images: Iterable[tuple[str, np.ndarray, np.ndarray]], model_config: ModelConfig, frames: tuple[int, ...]) -> list[Sample]:
    """Crawled samples (`samples.crawled_samples`) of each (name, H x W image, N x H x W masks),
    image k's crawl seeded k + 1 (the tracking benchmark's sequences are seed 0)."""
    out = []
    for k, (name, image, masks) in enumerate(images):
        if len(masks):
            out += crawled_samples(name, image, masks, model_config, frames, seed=k + 1)
    return out
