"""Evaluate a model on BBBC010 wells, from a folder or a packed .npz (the `semiconv evaluate` command's core)."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from .data.bbbc010 import VALIDATION_WELLS
from .data.folds import held_out_wells
from .data.packed import open_wells
from .errors import InputError
from .inference import SemiConvModel
from .metrics import evaluate_predictions


def select_wells(source, wells: str | None, fold: int | None = None) -> list[str]:
    """The wells of `source` (`open_wells`) to score: fold `fold`'s held-out wells, else 'validation' (the default), 'all' or a comma list."""
    if fold is not None:
        if wells not in (None, ""):
            raise InputError("give either --wells or --fold, not both")
        return held_out_wells(fold)
    if wells in (None, "", "validation"):
        return list(VALIDATION_WELLS)
    if wells == "all":
        return list(source.all_wells)
    return [w.strip().upper() for w in wells.split(",") if w.strip()]


def evaluate_model(model: SemiConvModel, data: str | Path, wells: str | None = None, score_threshold: float | None = None,
                   warn=print, fold: int | None = None) -> dict:
    """Metrics on the chosen wells (see `select_wells`) of a BBBC010-layout folder or packed .npz;
    wells with missing files are skipped, counted and named."""
    folder = open_wells(data)
    chosen = select_wells(folder, wells, fold)
    threshold = model.config.score_threshold if score_threshold is None else score_threshold
    preds, truths, skipped, seconds = [], [], [], 0.0
    for name in tqdm(chosen, desc="evaluating", unit="well"):
        if name not in folder.wells:
            skipped.append(name)
            continue
        try:
            well = folder.load(name)
        except InputError as exc:
            warn(str(exc))
            skipped.append(name)
            continue
        channels = {"fluorescence": well.fluorescence} if model.config.takes_fluorescence else {}
        image = well.channel("binary") if model.config.input_mode == "binary" else well.brightfield
        start = time.perf_counter()
        pred = model.predict(image, score_threshold=0.05, dense=False, clean_from=threshold, **channels)
        seconds += time.perf_counter() - start
        preds.append((pred.masks, pred.scores))
        truths.append(well.masks)
    if skipped:
        warn(f"{len(skipped)} well(s) skipped (missing or unreadable files): {', '.join(skipped)}")
        for p in folder.problems:
            if any(s in p for s in skipped):
                warn(p)
    if not truths:
        raise InputError(f"{data}: none of the wells {', '.join(chosen)} could be evaluated")
    metrics = evaluate_predictions(preds, truths, threshold)
    metrics["mask_threshold"] = model.config.mask_threshold
    metrics["mask_containment_threshold"] = model.config.mask_containment_threshold
    if model.config.foreground_head:
        metrics["foreground_threshold"] = model.config.foreground_threshold
    metrics.update({"model": model.name, "wells": [w for w in chosen if w not in skipped], "skipped_wells": skipped,
                    "seconds_per_image": seconds / len(truths), "device": str(model.device)})
    return metrics
