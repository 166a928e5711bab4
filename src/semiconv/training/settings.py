"""The settings of a training run, from a config file, command-line choices, a run to resume or a
model to start from; choices that contradict each other are refused by name.

Precedence for a new run: the model to start from (`init`: its config and weights), then the
config file's 'model' section, then --head/--input (refused with `init` when they would change its
head or input: its weights would not fit); a config file that reshapes a part of the `init` model
(a wider mask head, say) starts that part fresh, the rest from its weights (`reshaped_modules`).
`init_backbone` takes only a model's ResNet body (like
pretrained weights): the new model is the config file's, with its own FPN and heads, trained
fresh. A resumed run (its checkpoint exists) keeps the model and training settings it was
started with; the config file and flags may repeat them or raise the step count, anything else
is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import CHOSEN_THRESHOLDS, ModelConfig, TrainConfig
from ..errors import InputError

#: Model settings a run chooses itself (thresholds on validation, the training data's worm width and length):
#: a config file may name them, a resumed run keeps its own.
CHOSEN_BY_TRAINING = (*CHOSEN_THRESHOLDS, "worm_width_px", "worm_length_px")
SECTIONS = ("model", "train")
#: What `init_backbone` takes from a model, and what starts fresh (state-dict name prefixes)
BACKBONE_BODY = "backbone.body."
FRESH_AFTER_BACKBONE = ("backbone.fpn", "rpn", "roi_heads", "foreground_head")


@dataclass
class TrainingSettings:
    model_config: ModelConfig
    train_config: TrainConfig
    init_state: dict | None = None  # weights to start from (`init`, `init_backbone`)
    fresh_modules: tuple[str, ...] = ()  # modules the weights lack on purpose (`init_backbone`): initialised fresh
    resuming: bool = False  # a checkpoint to continue from exists
    # the model it started from, for the run's config.json: {"init" or "init_backbone": name, "folder", "weights_sha256"}
    started_from: dict | None = None


def read_config_file(path: str | Path | None) -> dict:
    """A training config file's sections ({'model': {...}, 'train': {...}}, either optional)."""
    if path is None:
        return {}
    try:
        sections = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot be read as a JSON config ({exc})") from exc
    if not isinstance(sections, dict) or set(sections) - set(SECTIONS):
        unknown = sorted(set(sections) - set(SECTIONS)) if isinstance(sections, dict) else sections
        raise InputError(f"{path}: unknown section(s) {unknown}; a config has 'model' and/or 'train'")
    return sections


def checkpoint_of(out: str | Path) -> Path:
    return Path(out) / "checkpoints" / "last.pt"


def resolve_settings(sections: dict, out: str | Path, *, head: str | None = None, input_mode: str | None = None,
                     steps: int | None = None, resume: bool = False, init: str | None = None,
                     init_backbone: str | None = None) -> TrainingSettings:
    """The model and training configs of `semiconv train` (see the module's docstring)."""
    checkpoint = checkpoint_of(out)
    if resume and checkpoint.exists():
        return _resumed(sections, checkpoint, head, input_mode, steps)
    if init and init_backbone:
        raise InputError("--init and --init-backbone exclude each other: --init takes the whole model, --init-backbone its ResNet body only")
    init_state, fresh_modules, started_from = None, (), None
    model_section = sections.get("model", {})
    if init:
        from ..model_folders import read_model_folder, resolve_model

        model_config, init_state, _ = read_model_folder(resolve_model(init))
        changed = [f"{flag} {value!r}" for flag, value, own in (("--head", head, model_config.head),
                                                               ("--input", input_mode, model_config.input_mode))
                   if value and value != own]
        if changed:
            raise InputError(f"--init {init}: its weights are for head {model_config.head!r} and input "
                             f"{model_config.input_mode!r}; {' and '.join(changed)} would not fit them")
        model_config = ModelConfig.from_dict({**model_config.to_dict(), **model_section})
        model_config.validate()
        started_from = starting_model("init", init)
        fresh_modules = reshaped_modules(init_state, model_config)
        if fresh_modules:
            if any(m.startswith(BACKBONE_BODY.rstrip(".")) for m in fresh_modules):
                raise InputError(f"--init {init}: the config changes its ResNet body ({', '.join(fresh_modules)}); "
                                 "use --init-backbone with a body of the same depth, or train from scratch")
            started_from = {**started_from, "fresh_modules": list(fresh_modules)}
    else:
        model_config = ModelConfig.from_dict(model_section)
        model_config = replace(model_config, **{k: v for k, v in (("head", head), ("input_mode", input_mode)) if v})
    if init_backbone:
        init_state, fresh_modules = backbone_weights(init_backbone, model_config), FRESH_AFTER_BACKBONE
        started_from = starting_model("init_backbone", init_backbone)
    train_config = TrainConfig.from_dict(sections.get("train", {}))
    if steps:
        train_config = replace(train_config, steps=steps)
    model_config.validate()
    return TrainingSettings(model_config, train_config, init_state, fresh_modules, started_from=started_from)


def starting_model(flag: str, model: str) -> dict:
    """What a run started from, as its config.json records it: the flag's name and value, the
    model folder and its weights' SHA-256 (a bundled name may later hold other weights)."""
    import hashlib

    from ..model_folders import WEIGHTS_FILE, resolve_model

    folder = resolve_model(model)
    digest = hashlib.sha256((folder / WEIGHTS_FILE).read_bytes()).hexdigest()
    return {flag: str(model), "folder": str(folder.resolve()), "weights_sha256": digest}


def reshaped_modules(state: dict, model_config: ModelConfig) -> tuple[str, ...]:
    """Modules (two-level state-dict prefixes such as 'roi_heads.mask_head') of `model_config`'s
    network whose weights `state` lacks, or holds in another shape or as extra entries."""
    from ..model_folders import mismatched_weights
    from ..network import build_model

    missing, unexpected, shape = mismatched_weights(build_model(model_config).state_dict(), state)
    return tuple(sorted({".".join(key.split(".")[:2]) for key in (*missing, *unexpected, *shape)}))


def backbone_weights(model: str, model_config: ModelConfig) -> dict:
    """The ResNet body's weights of `model` (name or folder) for a new model of `model_config`:
    refused by name when its depth or input channels differ."""
    from ..model_folders import read_model_folder, resolve_model

    donor, state, _ = read_model_folder(resolve_model(model))
    differ = [f"{key} {getattr(donor, key)!r} (new model: {getattr(model_config, key)!r})"
              for key in ("backbone_depth", "input_mode") if getattr(donor, key) != getattr(model_config, key)]
    if differ:
        raise InputError(f"--init-backbone {model}: its backbone does not fit the new model: {'; '.join(differ)}")
    return {k: v for k, v in state.items() if k.startswith(BACKBONE_BODY)}


def _resumed(sections: dict, checkpoint: Path, head, input_mode, steps) -> TrainingSettings:
    import torch

    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model_config = ModelConfig.from_dict(saved["model_config"])
    train_config = TrainConfig.from_dict(saved["train_config"])
    asked_model = {**sections.get("model", {}), **({"head": head} if head else {}),
                   **({"input_mode": input_mode} if input_mode else {})}
    ModelConfig.from_dict({**model_config.to_dict(), **asked_model})  # unknown keys: an error naming them
    TrainConfig.from_dict(sections.get("train", {}))
    conflicts = _differences("model", asked_model, model_config.to_dict(), skip=CHOSEN_BY_TRAINING)
    conflicts += _differences("train", sections.get("train", {}), train_config.to_dict(), skip=("steps",))
    wanted = steps or sections.get("train", {}).get("steps")
    if wanted and wanted < train_config.steps:
        conflicts.append(f"steps (run: {train_config.steps}, asked: {wanted}; a resumed run may only get more)")
    if conflicts:
        raise InputError(f"--resume: {checkpoint.parent.parent} was started with other settings: {'; '.join(conflicts)}. "
                         "Leave them out or train into a new folder")
    if wanted:
        train_config = replace(train_config, steps=wanted)
    return TrainingSettings(model_config, train_config, resuming=True, started_from=saved.get("started_from"))


def _differences(section: str, asked: dict, saved: dict, skip: tuple[str, ...]) -> list[str]:
    """'section.key (run: saved, asked: value)' for each asked key whose value differs from the run's."""
    def plain(value):
        return json.loads(json.dumps(value))  # tuples as lists, as saved

    return [f"{section}.{key} (run: {saved.get(key)!r}, asked: {value!r})" for key, value in asked.items()
            if key not in skip and plain(value) != plain(saved.get(key))]
