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


def noise_level(image: np.ndarray) -> float:
    """The sd of an image's pixel noise (its units), from the mean absolute response to a
    Laplacian-difference mask that cancels smooth structure (Immerkaer 1996, Fast noise variance
    estimation); 0 for images under 3 x 3."""
    from scipy import ndimage as ndi

    x = np.asarray(image, np.float32)
    if min(x.shape) < 3:
        return 0.0
    mask = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = ndi.convolve(x, mask)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(response).mean() / 6)


def is_too_noisy(normalised: np.ndarray, config: ModelConfig) -> bool:
    """Whether a normalised bright-field plane is noisier than the model's limit (smoothed then)."""
    return config.smooth_noise_above > 0 and noise_level(normalised) > config.smooth_noise_above


def channel_input(channel: str, image: np.ndarray, config: ModelConfig, notes: list[str] | None = None) -> np.ndarray:
    """One normalised channel (H x W float32); a bright-field plane noisier than the model's
    `smooth_noise_above` is smoothed (Gaussian, `noise_smoothing_px`), which is said in `notes`."""
    if channel == "binary":
        return (np.asarray(image) > 0).astype(np.float32)
    x = normalize_percentile(image, *config.norm_percentiles)
    if channel == "brightfield" and is_too_noisy(x, config):
        from scipy import ndimage as ndi

        x = ndi.gaussian_filter(x, config.noise_smoothing_px).astype(np.float32)
        if notes is not None:
            notes.append(f"noisier than the model's training images: smoothed by {config.noise_smoothing_px:g} px")
    return x


def network_input(channels: dict[str, np.ndarray], config: ModelConfig, notes: list[str] | None = None) -> np.ndarray:
    """Stack the channels the model's input mode needs into C x H x W float32 (`notes`: what
    the user should be told, e.g. that a noisy image was smoothed)."""
    names = INPUT_CHANNELS[config.input_mode]
    missing = [n for n in names if n not in channels or channels[n] is None]
    if missing:
        raise InputError(f"input mode {config.input_mode!r} needs channel(s) {missing}")
    return np.stack([channel_input(n, channels[n], config, notes) for n in names]).astype(np.float32)
