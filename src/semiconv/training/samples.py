"""Training samples: normalised inputs with their instances, random crops and augmentation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage as ndi

from ..config import ModelConfig
from ..data.bbbc010 import Bbbc010Folder
from ..data.generic import AnnotatedImage
from ..normalize import network_input


@dataclass
class Sample:
    """image: C x H x W float32 (normalised); masks: N x H x W bool."""

    name: str
    image: np.ndarray
    masks: np.ndarray


def samples_from_bbbc010(folder: Bbbc010Folder, wells: list[str], config: ModelConfig) -> list[Sample]:
    out = []
    for name in wells:
        well = folder.load(name)
        channels = {"brightfield": well.brightfield, "fluorescence": well.fluorescence, "binary": well.channel("binary")}
        out.append(Sample(name, network_input(channels, config), well.masks))
    return out


def samples_from_annotated(items: list[AnnotatedImage], config: ModelConfig) -> list[Sample]:
    out = []
    for item in items:
        channels = {"brightfield": item.image, "binary": item.masks.any(0) if len(item.masks) else item.image * 0}
        out.append(Sample(item.name, network_input(channels, config), item.masks))
    return out


def random_crop(sample: Sample, size: int, rng: np.random.Generator, min_pixels: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Crop (C x s x s, N' x s x s) biased towards worms; keeps instances with >= min_pixels inside.

    Images smaller than `size` are padded with zeros.
    """
    image, masks = sample.image, sample.masks
    C, H, W = image.shape
    if H < size or W < size:
        ph, pw = max(size - H, 0), max(size - W, 0)
        image = np.pad(image, ((0, 0), (0, ph), (0, pw)))
        masks = np.pad(masks, ((0, 0), (0, ph), (0, pw)))
        H, W = image.shape[1:]
    if len(masks) and rng.random() < 0.8:  # centre on a random worm pixel most of the time
        k = rng.integers(len(masks))
        rows, cols = np.nonzero(masks[k])
        j = rng.integers(len(rows))
        r0 = int(np.clip(rows[j] - rng.integers(size // 4, 3 * size // 4), 0, H - size))
        c0 = int(np.clip(cols[j] - rng.integers(size // 4, 3 * size // 4), 0, W - size))
    else:
        r0, c0 = int(rng.integers(0, H - size + 1)), int(rng.integers(0, W - size + 1))
    img = image[:, r0: r0 + size, c0: c0 + size]
    crop = masks[:, r0: r0 + size, c0: c0 + size]
    keep = crop.reshape(len(crop), -1).sum(1) >= min_pixels
    return img, crop[keep]


def augment(image: np.ndarray, masks: np.ndarray, rng: np.random.Generator, params: dict, binary_input: bool) -> tuple[np.ndarray, np.ndarray]:
    """Flips, 90-degree rotations; intensity (gamma, gain, offset), blur and noise on non-binary input."""
    if params.get("flip", True):
        if rng.random() < 0.5:
            image, masks = image[:, :, ::-1], masks[:, :, ::-1]
        if rng.random() < 0.5:
            image, masks = image[:, ::-1], masks[:, ::-1]
    if params.get("rot90", True):
        k = int(rng.integers(4))
        image, masks = np.rot90(image, k, axes=(1, 2)), np.rot90(masks, k, axes=(1, 2))
    image = np.ascontiguousarray(image, dtype=np.float32)
    masks = np.ascontiguousarray(masks)
    if binary_input:
        return image, masks
    lo_g, hi_g = params.get("gamma", (1, 1))
    gamma = float(np.exp(rng.uniform(np.log(lo_g), np.log(hi_g))))
    image = np.sign(image) * np.abs(image) ** gamma
    image = image * rng.uniform(*params.get("gain", (1, 1))) + rng.uniform(*params.get("offset", (0, 0)))
    blur = rng.uniform(*params.get("blur", (0, 0)))
    if blur > 0.3:
        image = ndi.gaussian_filter(image, (0, blur, blur))
    noise = rng.uniform(*params.get("noise", (0, 0)))
    if noise > 0:
        image = image + rng.normal(0, noise, size=image.shape).astype(np.float32)
    return image.astype(np.float32), masks


def to_target(masks: np.ndarray) -> dict:
    """torchvision detection target from an N x H x W bool stack."""
    from ..data.instances import boxes_from_masks

    m = torch.from_numpy(np.ascontiguousarray(masks)).to(torch.uint8)
    return {
        "boxes": torch.from_numpy(boxes_from_masks(masks)).reshape(-1, 4),
        "labels": torch.ones(len(masks), dtype=torch.int64),
        "masks": m,
    }


def make_batch(samples: list[Sample], batch_size: int, crop: int, rng: np.random.Generator, params: dict, binary_input: bool):
    images, targets = [], []
    for _ in range(batch_size):
        sample = samples[int(rng.integers(len(samples)))]
        img, masks = random_crop(sample, crop, rng)
        img, masks = augment(img, masks, rng, params, binary_input)
        images.append(torch.from_numpy(img))
        targets.append(to_target(masks))
    return images, targets
