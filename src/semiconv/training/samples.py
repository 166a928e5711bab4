"""Training samples: normalised inputs with their instances, random crops and augmentation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage as ndi

from ..config import ModelConfig
from ..data.bbbc010 import Bbbc010Folder
from ..data.generic import AnnotatedImage
from ..normalize import network_input, normalize_percentile
from ..scale import resample_plane, resize_maps


@dataclass
class Sample:
    """image: C x H x W float32 (normalised); masks: N x H x W bool; crawled: a frame of the
    image's worms after crawling (`crawled_samples`), not the image as annotated."""

    name: str
    image: np.ndarray
    masks: np.ndarray
    crawled: bool = False


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


def crawled_frames_asked(augment: dict) -> tuple[int, ...]:
    """The frames of each training image's crawl (`crawled_samples`) a run's augmentation asks
    for: augment["crawled_frames"] (default 10, 20, 29) when augment["crawled_share"] > 0, else none."""
    if float(augment.get("crawled_share", 0.0)) <= 0:
        return ()
    frames = tuple(int(t) for t in augment.get("crawled_frames", (10, 20, 29)))
    if not frames or min(frames) < 1:
        raise ValueError(f"crawled_frames must be frame numbers >= 1 (frame 0 is the image itself), not {list(frames)}")
    return frames


def crawled_samples(name: str, image: np.ndarray, masks: np.ndarray, config: ModelConfig, frames: tuple[int, ...],
                    seed: int) -> list[Sample]:
    """Training samples of one annotated bright-field image (H x W, masks N x H x W bool) whose
    worms have crawled (`semiconv.data.moving`, seeded `seed`): frames `frames` of a sequence of
    max(frames) + 1, each with its worms' masks. Worms come to lie along each other, in clumps and
    across each other in poses the annotation never has; the network sees them with whole masks."""
    from ..data.moving import MotionConfig, moving_worms

    if config.input_mode != "brightfield":
        raise ValueError(f"crawled frames are bright-field only; this model's input is {config.input_mode!r}")
    if not np.issubdtype(np.asarray(image).dtype, np.integer):  # the generator renders integer grey levels
        image = normalize_percentile(image, 0.0, 100.0) * 50000.0
    sequence = moving_worms(image, masks, seed=seed, config=MotionConfig(frames=max(frames) + 1))
    out = []
    for t in frames:
        frame_masks = sequence.masks[t]
        frame_masks = frame_masks[frame_masks.any((1, 2))]
        out.append(Sample(f"{name} crawled t{t}", network_input({"brightfield": sequence.frames[t]}, config),
                          frame_masks, crawled=True))
    return out


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """A factor drawn log-uniformly from [low, high]; `low` itself (no draw) when high <= low."""
    return float(np.exp(rng.uniform(np.log(low), np.log(high)))) if high > low else float(low)


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
    keep = crop.sum((1, 2)) >= min_pixels
    return img, crop[keep]


def scaled_crop(sample: Sample, size: int, rng: np.random.Generator, scale_range=(1.0, 1.0),
                min_pixels: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """`random_crop` at a random magnification: a window of size / scale pixels (scale drawn
    log-uniformly from `scale_range`) resized to size x size (image bilinear, masks by area
    > 0.5), so the network sees worms a little thinner and thicker than in its data."""
    low, high = scale_range
    scale = log_uniform(rng, low, high)
    window = int(round(size / scale))
    if window == size:
        return random_crop(sample, size, rng, min_pixels)
    image, masks = random_crop(sample, window, rng, min_pixels=1)
    stack = torch.from_numpy(np.concatenate([image, masks.astype(np.float32)]))[None]
    resized = torch.nn.functional.interpolate(stack, size=(size, size), mode="bilinear", align_corners=False)[0].numpy()
    image, masks = resized[:len(image)], resized[len(image):] > 0.5
    masks = masks[masks.sum((1, 2)) >= min_pixels]
    return np.ascontiguousarray(image, dtype=np.float32), masks


def augment(image: np.ndarray, masks: np.ndarray, rng: np.random.Generator, params: dict, binary_input: bool) -> tuple[np.ndarray, np.ndarray]:
    """Flips, 90-degree rotations; intensity (gamma, gain, offset), blur and noise on non-binary input.

    params["resample"] (factor range, default (1, 1)) with params["resample_fraction"] (share of
    crops, default 1): the crop is shrunk by a factor drawn log-uniformly from the range, blurred
    and noised at that size and enlarged back (masks unchanged), as a lower-magnification image
    looks after `semiconv segment --rescale` brings it to the model's scale."""
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
    noise = rng.uniform(*params.get("noise", (0, 0)))
    low, high = params.get("resample", (1.0, 1.0))
    factor = log_uniform(rng, low, high)
    if factor < 1 and rng.random() < params.get("resample_fraction", 1.0):
        # a lower magnification brought back to this scale (as segment's rescale does): blur and
        # noise happen at the camera's pixels, so the noise comes back spatially correlated
        size = image.shape[-2:]
        image = blur_and_noise(resample_plane(image, factor), blur, noise, rng)
        image = resize_maps(image, size)
    else:
        image = blur_and_noise(image, blur, noise, rng)
    return image.astype(np.float32), masks


def blur_and_noise(image: np.ndarray, blur: float, noise: float, rng: np.random.Generator) -> np.ndarray:
    """C x H x W image blurred (Gaussian sigma `blur` px, skipped below 0.3) plus Gaussian noise (sd `noise`)."""
    if blur > 0.3:
        image = ndi.gaussian_filter(image, (0, blur, blur))
    if noise > 0:
        image = image + rng.normal(0, noise, size=image.shape).astype(np.float32)
    return image


def paste_worms(image: np.ndarray, masks: np.ndarray, donors: list[Sample], rng: np.random.Generator, count: int,
                feather: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Copy-paste: `count` real annotated worms from `donors` (random worm, flip and 90-degree
    turn) pasted over a C x s x s crop, each centred near a pixel of a worm already there so that
    it crosses or touches it; the worms beneath keep their whole masks (overlaps kept, as
    BBBC010's annotations do). The pasted worm multiplies the crop by its transmission (its
    pixels over its own local background), with a `feather`-pixel soft edge. Returns the new
    image and masks (N + pasted) x s x s."""
    image, masks = image.copy(), list(masks)
    C, S, _ = image.shape
    for _ in range(count):
        donor = donors[int(rng.integers(len(donors)))]
        if not len(donor.masks):
            continue
        worm = donor.masks[int(rng.integers(len(donor.masks)))]
        rows, cols = np.nonzero(worm)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        if max(r1 - r0, c1 - c0) > S:
            continue
        patch, shape = donor.image[:, r0:r1, c0:c1], worm[r0:r1, c0:c1]
        k = int(rng.integers(4))
        patch, shape = np.rot90(patch, k, axes=(1, 2)), np.rot90(shape, k)
        if rng.random() < 0.5:
            patch, shape = patch[:, :, ::-1], shape[:, ::-1]
        h, w = shape.shape
        if masks and rng.random() < 0.9:  # over a worm already there: a crossing
            target = masks[int(rng.integers(len(masks)))]
            tr, tc = np.nonzero(target)
            j = int(rng.integers(len(tr)))
            top, left = int(np.clip(tr[j] - h // 2, 0, S - h)), int(np.clip(tc[j] - w // 2, 0, S - w))
        else:
            top, left = int(rng.integers(0, S - h + 1)), int(rng.integers(0, S - w + 1))
        # bright-field is transmission: the worm multiplies what lies beneath by its own
        # transmission (its pixels over its local background), so a crossing comes out darker
        ring = ndi.binary_dilation(shape, iterations=4) & ~ndi.binary_dilation(shape, iterations=1)
        if not ring.any():
            continue
        background = np.median(patch[:, ring], axis=1)[:, None, None]
        if background.min() < 0.25:  # a worm on the dark rim of its well: no transmission to take
            continue
        transmission = np.clip(patch / background, 0, 1.05)
        alpha = ndi.gaussian_filter(shape.astype(np.float32), feather) if feather > 0 else shape.astype(np.float32)
        alpha = np.maximum(alpha, shape)  # fully on the worm, soft just outside
        region = image[:, top:top + h, left:left + w]
        if region[:, shape].mean() < 0.25:  # over the dark outside of the well a worm would not show
            continue
        image[:, top:top + h, left:left + w] = region * (1 - alpha + alpha * transmission)
        pasted = np.zeros((S, S), bool)
        pasted[top:top + h, left:left + w] = shape
        masks.append(pasted)
    stack = np.stack(masks) if masks else np.zeros((0, S, S), bool)
    return image.astype(np.float32), stack


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
    """A batch of augmented crops: images (C x crop x crop tensors) and torchvision targets.
    params["scale"] (default (1, 1)): magnification range of the crops (`scaled_crop`);
    params["copy_paste"] (default 0): worms from other training images pasted over each crop;
    params["crawled_share"] (default 0): share of crops taken from the crawled samples among
    `samples` (`crawled_samples`), the rest from the annotated images."""
    images, targets = [], []
    annotated = [s for s in samples if not s.crawled]
    crawled = [s for s in samples if s.crawled]
    share = float(params.get("crawled_share", 0.0))
    for _ in range(batch_size):
        pool = crawled if crawled and rng.random() < share else annotated
        sample = pool[int(rng.integers(len(pool)))]
        img, masks = scaled_crop(sample, crop, rng, tuple(params.get("scale", (1.0, 1.0))))
        if params.get("copy_paste", 0) and not binary_input:
            img, masks = paste_worms(img, masks, annotated, rng, int(params["copy_paste"]))
        img, masks = augment(img, masks, rng, params, binary_input)
        images.append(torch.from_numpy(img))
        targets.append(to_target(masks))
    return images, targets


def batch_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of batch `index` of a run seeded `seed`: each batch has its own, so the
    stream does not depend on where a run was resumed or on how many processes make it."""
    return np.random.default_rng([seed, index])


class _Batches(torch.utils.data.IterableDataset):
    """Batches first, first + 1, ... made in this process or in DataLoader workers: worker w of W
    makes first + w, first + w + W, ...; the DataLoader takes them from the workers in turn, so in order."""

    def __init__(self, samples, batch_size, crop, params, binary_input, seed, first):
        self.args = samples, batch_size, crop, params, binary_input
        self.seed, self.first = seed, first

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        index, stride = (self.first + info.id, info.num_workers) if info else (self.first, 1)
        while True:
            yield make_batch(*self.args[:3], batch_rng(self.seed, index), *self.args[3:])
            index += stride


def batch_stream(samples: list[Sample], batch_size: int, crop: int, params: dict, binary_input: bool,
                 seed: int = 0, first: int = 0, workers: int = 0):
    """Endless (images, targets) batches (`make_batch`), batch i drawn from `batch_rng(seed, i)`,
    starting at batch `first` (a resumed run: its step count, so it continues the same stream).
    workers = 0: made here; workers > 0: made ahead in that many DataLoader processes (the same
    batches in the same order), so the model does not wait for augmentation."""
    batches = _Batches(samples, batch_size, crop, params, binary_input, seed, first)
    if workers <= 0:
        yield from batches
        return
    # its own torch generator: the loader's seed draw must not move the training's torch RNG
    loader = torch.utils.data.DataLoader(batches, batch_size=None, num_workers=workers, prefetch_factor=4,
                                         persistent_workers=True, generator=torch.Generator().manual_seed(seed))
    yield from loader
