"""Intensity normalisation and assembly of the network input for each input mode."""

from __future__ import annotations

import numpy as np

from .config import INPUT_CHANNELS, ModelConfig
from .errors import InputError


def normalize_percentile(image: np.ndarray, low: float = 1.0, high: float = 99.5) -> np.ndarray:
    """(x - p_low) / (p_high - p_low) as float32; robust to dtype and exposure.

    A constant image maps to zeros (an empty well is not an error).
    """
    image = np.asarray(image, dtype=np.float32)
    if not np.isfinite(image).all():
        raise InputError("image contains NaN or Inf values")
    lo, hi = np.percentile(image, [low, high])
    if hi - lo < 1e-6 * max(1.0, abs(hi)):
        return np.zeros_like(image)
    return ((image - lo) / (hi - lo)).astype(np.float32)


def channel_input(channel: str, image: np.ndarray, config: ModelConfig) -> np.ndarray:
    """One normalised channel (H x W float32)."""
    if channel == "binary":
        return (np.asarray(image) > 0).astype(np.float32)
    return normalize_percentile(image, *config.norm_percentiles)


def network_input(channels: dict[str, np.ndarray], config: ModelConfig) -> np.ndarray:
    """Stack the channels the model's input mode needs into C x H x W float32."""
    names = INPUT_CHANNELS[config.input_mode]
    missing = [n for n in names if n not in channels or channels[n] is None]
    if missing:
        raise InputError(f"input mode {config.input_mode!r} needs channel(s) {missing}")
    return np.stack([channel_input(n, channels[n], config) for n in names]).astype(np.float32)
