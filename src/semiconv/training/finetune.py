"""Fine-tuning a trained model on a few annotated images (the same loop as training).

The new model is trained in a hidden sibling folder and moved into place only when
training ends (finished or stopped with a good checkpoint), so no half-written model
folder ever shows up among the user's models.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..config import TrainConfig
from ..data.bbbc010 import fluorescence_partner, well_of, worm_mask_files
from ..data.folds import held_out_count, held_out_split
from ..data.generic import AnnotatedImage, load_pair
from ..errors import InputError
from ..inference import resolve_device
from ..model_folders import read_model_folder, resolve_model, user_models_dir
from .loop import TrainResult, train
from .samples import samples_from_annotated

#: Chosen on a shifted BBBC010 (benchmarks/finetune_domain_shift.py, docs/benchmarks.md): 140 steps
#: of 2 crops of 256 px at lr 1.5e-4 on all annotated images, thresholds chosen once, at the end, on
#: those same images (FINETUNE_VAL_FRACTION 0: with 10 images, holding 2 out to choose on gained less).
FINETUNE_DEFAULTS = {"steps": 140, "batch_size": 2, "crop_size": 256, "lr": 1.5e-4, "warmup_steps": 20,
                     "checkpoint_every": 25}
FINETUNE_VALIDATIONS = 1
FINETUNE_VAL_FRACTION = 0.0


def check_name(images: int, val_fraction: float) -> str:
    """What the avAP fine-tuning reports is measured on: held-out images, or the annotated images
    it trained on (its thresholds fitted there), for the plot and messages."""
    return "validation avAP" if held_out_count(images, val_fraction) else "avAP on the annotated images"


def finetune_config(**overrides) -> TrainConfig:
    """Training hyperparameters that work for 5 to 20 annotated images (FINETUNE_DEFAULTS; overrides
    given as None keep the default). Unless given, validation runs FINETUNE_VALIDATIONS times."""
    cfg = TrainConfig(**FINETUNE_DEFAULTS)
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    if overrides.get("val_every") is None:
        cfg.val_every = max(1, cfg.steps // FINETUNE_VALIDATIONS)
    return cfg


def pair_inputs(images: list[Path], annotations: list[Path]) -> tuple[list[tuple[Path, object]], list[str]]:
    """Match images with annotations; returns (pairs, problems). Annotations are one per image in
    the same order; or one folder with an annotation per image stem; or one folder of per-worm
    masks in the BBBC010 layout (`<WELL>_<NN>_ground_truth.png`, as `semiconv train` reads),
    matched to images by the well in their name. Images without an annotation in a folder are
    left out and named in `problems` (fluorescence partners of a BBBC010 folder silently)."""
    if len(annotations) == 1 and annotations[0].is_dir():
        root = annotations[0]
        by_well = worm_mask_files(root)
        pairs, problems = [], []
        if by_well:
            partners = {fluorescence_partner(p, images) for p in images}
            for image in images:
                if image in partners:
                    continue  # the fluorescence channel of a bright-field image given too
                well = well_of(image.name)
                if well in by_well:
                    pairs.append((image, by_well[well]))
                else:
                    problems.append(f"{image.name}: no per-worm masks for {f'well {well}' if well else 'it'} in {root}; left out")
        elif len(images) > 1:
            for image in images:
                found = next((c for c in [root / image.stem, root / f"{image.stem}.tif", root / f"{image.stem}.tiff",
                                           root / f"{image.stem}.png"] if c.exists()), None)
                if found is None:
                    problems.append(f"{image.name}: no annotation named {image.stem} in {root}; left out")
                else:
                    pairs.append((image, found))
        else:
            pairs = [(images[0], root)]  # one image, a folder of its worms
        if not pairs:
            raise InputError(f"{root}: no annotation matches any of the {len(images)} images")
        return pairs, problems
    if len(images) != len(annotations):
        raise InputError(f"{len(images)} images but {len(annotations)} annotations: give one annotation per image")
    return list(zip(images, annotations, strict=True)), []


def output_folder(name_or_path: str) -> Path:
    """A bare name goes to the user's model folder; anything with a path separator is used as is."""
    return Path(name_or_path) if ("/" in name_or_path or "\\" in name_or_path) else user_models_dir() / name_or_path


def finetune(items: list[AnnotatedImage], base: str, out: str | Path, train_config: TrainConfig | None = None,
             val_fraction: float = FINETUNE_VAL_FRACTION, device: str = "auto", seed: int = 0, input_mode: str | None = None,
             progress=None, should_stop=None, overwrite: bool = False) -> tuple[Path, TrainResult]:
    """Fine-tune `base` on annotated images; returns the new model folder and the training result.
    `val_fraction` of the images (with 3 or more) is held out to choose the thresholds (and the
    best checkpoint) on; with none held out (the default) the model trains on all of them and its
    thresholds are chosen on them."""
    if not items:
        raise InputError("no annotated images to fine-tune on")
    if all(len(i.masks) == 0 for i in items):
        raise InputError("the annotations hold no worm: nothing to learn from")
    base_folder = resolve_model(base)
    config, state, meta = read_model_folder(base_folder)
    if input_mode and input_mode != config.input_mode:
        raise InputError(f"base model {base_folder.name!r} takes {config.input_mode!r} input, not {input_mode!r}")
    target = Path(out)
    if target.exists() and not overwrite:
        raise InputError(f"{target}: exists already (choose another name)")
    cfg = train_config or finetune_config()
    train_idx, held_idx = held_out_split(len(items), val_fraction, seed)
    val = [items[i] for i in held_idx]
    tr = [items[i] for i in train_idx]
    baseline = base_on_held_out(base_folder, val, device) if val else None
    work = target.parent / f".{target.name}.partial"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        train_samples = samples_from_annotated(tr, config)
        val_samples = samples_from_annotated(val, config) if val else train_samples
        result = train(train_samples, val_samples, config, cfg, work,
                       resolve_device(device), init_state=state,
                       extra_meta={"base_model": base_folder.name, "finetuned_on": [i.name for i in tr],
                                   "validated_on": [i.name for i in (val or tr)],
                                   **({"base_model_on_held_out": baseline} if baseline else {})},
                       progress=progress, should_stop=should_stop)
        if not (work / "weights.pt").exists():
            raise InputError("training stopped before a model was saved")
        shutil.rmtree(work / "checkpoints", ignore_errors=True)
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    except OSError as exc:  # e.g. a full disk: nothing half-written stays behind
        shutil.rmtree(work, ignore_errors=True)
        raise InputError(f"cannot write the model to {target.parent}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    result.baseline_metrics = baseline
    return target, result


def base_on_held_out(base_folder: Path, items: list[AnnotatedImage], device: str = "auto") -> dict:
    """The base model's accuracy (its own thresholds) on the held-out annotated images: what
    fine-tuning is measured against (semiconv.metrics.evaluate_predictions)."""
    from ..inference import load_model
    from ..metrics import evaluate_predictions

    model = load_model(base_folder, device=device)
    preds = [model.predict(item.image, dense=False) for item in items]
    metrics = evaluate_predictions([(p.masks, p.scores) for p in preds], [item.masks for item in items],
                                   model.config.score_threshold)
    return {k: float(metrics[k]) for k in ("avAP", "AP", "score@0.5") if k in metrics}


def load_items(pairs: list[tuple[Path, object]]) -> list[AnnotatedImage]:
    return [load_pair(i, a) for i, a in pairs]
