"""Model folders: config.json + weights.pt, found by name (bundled or user) or by path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .__about__ import __version__
from .config import ModelConfig, save_json
from .errors import CheckpointError
from .resources import bundled_models_dir

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
FORMAT = 1


def user_models_dir() -> Path:
    """Where the user's trained and fine-tuned models live (platformdirs), overridable by SEMICONV_MODELS_DIR."""
    override = os.environ.get("SEMICONV_MODELS_DIR")
    if override:
        return Path(override)
    from platformdirs import user_data_dir

    return Path(user_data_dir("napari-semiconv", appauthor=False)) / "models"


def list_models() -> dict[str, Path]:
    """Name -> folder of every bundled and user model (user models shadow nothing: bundled first)."""
    found: dict[str, Path] = {}
    for root in (bundled_models_dir(), user_models_dir()):
        if root.is_dir():
            for sub in sorted(root.iterdir()):
                if (sub / CONFIG_FILE).is_file() and (sub / WEIGHTS_FILE).is_file() and sub.name not in found:
                    found[sub.name] = sub
    return found


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """A model folder from a bundled/user model name or a path; CheckpointError if none."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    models = list_models()
    if str(name_or_path) in models:
        return models[str(name_or_path)]
    known = ", ".join(models) or "none"
    raise CheckpointError(f"model {str(name_or_path)!r} not found (not a folder; known models: {known})")


def save_model_folder(folder: Path, model: torch.nn.Module, config: ModelConfig, extra: dict | None = None, half: bool = False) -> None:
    """Write weights and config atomically into `folder` (created if needed)."""
    from .io import atomic_path

    folder = Path(folder)  # made by atomic_path (semiconv.io.output_folder)
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS_FILE, overwrite=True) as tmp:
        torch.save(state, tmp)
    payload = {"format": FORMAT, "semiconv_version": __version__, "model": config.to_dict(), **(extra or {})}
    save_json(folder / CONFIG_FILE, payload)


def model_config(name_or_path: str | os.PathLike) -> ModelConfig:
    """A model's configuration (thresholds included) from its config.json alone, without loading
    the weights; CheckpointError naming the file otherwise."""
    cfg_path = resolve_model(name_or_path) / CONFIG_FILE
    try:
        return ModelConfig.from_dict(json.loads(cfg_path.read_text()).get("model", {}))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{cfg_path}: unreadable model config ({exc})") from exc


def read_model_folder(folder: Path) -> tuple[ModelConfig, dict, dict]:
    """(config, state_dict, metadata) of a model folder; CheckpointError naming the file otherwise."""
    folder = Path(folder)
    cfg_path, w_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not cfg_path.is_file():
        raise CheckpointError(f"{cfg_path}: model config not found")
    if not w_path.is_file():
        raise CheckpointError(f"{w_path}: model weights not found")
    try:
        meta = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{cfg_path}: not valid JSON ({exc})") from exc
    try:
        config = ModelConfig.from_dict(meta.get("model", {}))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{cfg_path}: invalid model config ({exc})") from exc
    try:
        state = torch.load(w_path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{w_path}: corrupt or unreadable weights ({type(exc).__name__})") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{w_path}: not a state dict")
    return config, state, meta


def mismatched_weights(own: dict, state: dict) -> tuple[list[str], list[str], list[str]]:
    """Where weights `state` do not fit a network's state dict `own`: the keys it lacks, the keys
    it has that the network lacks, and the keys it holds in another shape."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shape = [k for k in own if k in state and own[k].shape != state[k].shape]
    return missing, unexpected, shape


def load_state_checked(model: torch.nn.Module, state: dict, source: str, new_modules: tuple[str, ...] = ()) -> None:
    """load_state_dict with a clear error when weights and config disagree.

    `new_modules`: name prefixes of modules the weights may lack (added on top of a trained
    model, e.g. the foreground head); they keep their fresh initialisation, and their weights
    in `state` of another architecture are ignored.
    """
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    own = model.state_dict()
    prefixes = tuple(p + "." for p in new_modules)
    # a new module may replace one of another architecture: its old weights are dropped
    state = {k: v for k, v in state.items() if not (k.startswith(prefixes) and (k not in own or own[k].shape != v.shape))}
    fresh = [k for k in own if k not in state and k.startswith(prefixes)]
    state.update({k: own[k] for k in fresh})
    missing, unexpected, shape = mismatched_weights(own, state)
    if missing or unexpected or shape:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shape:
            detail.append(f"{len(shape)} of other shape (e.g. {shape[0]})")
        raise CheckpointError(f"{source}: weights do not match the model config: " + "; ".join(detail))
    model.load_state_dict(state)
