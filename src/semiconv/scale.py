"""Images at another magnification: resample to the model's training scale, results back.

A model records the typical size of the worms it was trained on: their median centre-line length
(`ModelConfig.worm_length_px`, `typical_worm_length`) and median mean width (`worm_width_px`:
foreground area / skeleton length, `typical_worm_width`) and, when known, its training pixel size
(`training_pixel_size_um`). An image is segmented at a resampling factor (>1 enlarges) chosen,
like cellpose's diameter, from
- the user's factor (1 = as is), or
- the user's pixel size: factor = pixel size / the model's training pixel size, or
- by default ("auto"), first passes: the worms found are measured against the model's (length and
  width, `_size_correction`), refined over up to AUTO_PASSES passes; a plane whose worms look
  like the model's is segmented once, as is (`rescale_for_next_plane`: a stack keeps the factor
  of its first plane with worms);
and every output is brought back to the image's pixels (masks by area, vectors in its pixels).
`scale_warning` names images whose worms look far from the model's, by the rule "auto" acts on.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

AUTO_MIN_CHANGE = 0.15  # "auto" leaves corrections within 15 % alone, and warns beyond (images of one scale vary about 10 %)
AUTO_PASSES = 3
MIN_WORMS_FOR_LENGTH = 3  # fewer worms found: their width alone decides
FACTOR_RANGE = (0.25, 4.0)


def foreground_width(mask: np.ndarray) -> float:
    """Mean width (px) of the worms in an H x W foreground: its area / its skeleton's length
    (0 without foreground). Works on the union of masks, so fragments of a worm count as one."""
    from skimage.morphology import skeletonize

    mask = np.asarray(mask, bool)
    length = int(skeletonize(mask).sum()) if mask.any() else 0
    return float(mask.sum()) / length if length else 0.0


def typical_worm_width(masks_per_image) -> float:
    """Median over images (N x H x W mask stacks) of `foreground_width` of their worms (0 without)."""
    widths = [foreground_width(masks.any(0)) for masks in masks_per_image if len(masks) and masks.any()]
    return float(np.median(widths)) if widths else 0.0


def worm_lengths(masks: np.ndarray) -> np.ndarray:
    """Centre-line length (px: skeleton pixels) of each of N H x W masks (N,), 0 for an empty mask."""
    from skimage.morphology import skeletonize

    lengths = np.zeros(len(masks))
    for i, mask in enumerate(masks):
        rows, cols = np.nonzero(np.asarray(mask).any(1))[0], np.nonzero(np.asarray(mask).any(0))[0]
        if len(rows):
            lengths[i] = skeletonize(np.asarray(mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], bool)).sum()
    return lengths


def typical_worm_length(masks_per_image) -> float:
    """Median over images (N x H x W mask stacks) of the median `worm_lengths` of their worms (0 without)."""
    medians = [float(np.median(worm_lengths(masks))) for masks in masks_per_image if len(masks)]
    return float(np.median(medians)) if medians else 0.0


def factor_from_pixel_size(config, pixel_size: float | None) -> float | None:
    """pixel size / the model's training pixel size, or None when either is unknown."""
    if not pixel_size or not getattr(config, "training_pixel_size_um", 0.0):
        return None
    return float(pixel_size) / config.training_pixel_size_um


def factor_from_width(config, width: float) -> float | None:
    """The model's worm width / `width` (px, measured in the image), or None when either is unknown."""
    if not width or not config.worm_width_px:
        return None
    return float(np.clip(config.worm_width_px / width, *FACTOR_RANGE))


def factor_from_length(config, length: float) -> float | None:
    """The model's worm length / `length` (px, median measured in the image), or None when either
    is unknown."""
    if not length or not config.worm_length_px:
        return None
    return float(np.clip(config.worm_length_px / length, *FACTOR_RANGE))


def scale_warning(config, width: float, factor: float = 1.0, length: float = 0.0) -> str | None:
    """One line when the worms found (mean width `foreground_width` and median length
    `worm_lengths`, in image px; 0 = not measured) are far from the model's training worms once
    resampled by `factor`: "auto" would resample them (`_auto_correction`); None when they look
    alike (or nothing is known to compare)."""
    if _auto_correction(config, width, length, factor) is None:
        return None
    with_length = bool(length and config.worm_length_px)
    sizes = f"{width:.1f} px wide" + (f", {length:.0f} px long" if with_length else "")
    model = f"{config.worm_width_px:.1f} px wide" + (f", {config.worm_length_px:.0f} px long" if with_length else "")
    return (f"worms here are about {sizes}{f' (x{factor:.2f} as segmented)' if factor != 1 else ''}, "
            f"the model's about {model}: results may be poor; segment with rescale 'auto' "
            f"or give the pixel size")


def resample_plane(plane: np.ndarray, factor: float) -> np.ndarray:
    """H x W (or C x H x W) float image resampled by `factor` (bilinear, antialiased when shrinking)."""
    x = torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float32))
    x = x[None, None] if x.ndim == 2 else x[None]
    size = [max(1, int(round(s * factor))) for s in x.shape[-2:]]
    y = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=factor < 1)
    return y[0, 0].numpy() if plane.ndim == 2 else y[0].numpy()


def resize_maps(maps: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """K x h x w float maps resampled to K x H x W (bilinear, pixel centres aligned)."""
    x = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))[None]
    return F.interpolate(x, size=shape, mode="bilinear", align_corners=False, antialias=True)[0].numpy()


def prediction_to_image(pred, factor: float, shape: tuple[int, int]):
    """A Prediction made on an image resampled by `factor`, brought back to the original H x W:
    masks by area (> 0.5), boxes and seeds and displacement vectors in original pixels; the
    embedding keeps the network's values (its coordinate channels stay in units of coord_scale
    pixels of the resampled image, so affinities are the network's own)."""
    from dataclasses import replace

    from .data.instances import stack_to_labels

    masks = np.zeros((len(pred.masks),) + tuple(shape), bool)
    for start in range(0, len(pred.masks), 16):  # bounded memory for many worms
        masks[start:start + 16] = resize_maps(pred.masks[start:start + 16], shape) > 0.5
    dense = {}
    if pred.embedding is not None:
        dense["embedding"] = resize_maps(pred.embedding, shape)
    if pred.displacement is not None:
        dense["displacement"] = resize_maps(pred.displacement, shape) / factor
    if pred.foreground is not None:
        dense["foreground"] = resize_maps(pred.foreground[None], shape)[0]
    return replace(pred, masks=masks, boxes=np.asarray(pred.boxes, np.float32) / factor,
                   seeds=np.asarray(pred.seeds, np.float32) / factor, labels=stack_to_labels(masks, pred.scores), **dense)


def scale_notes(factor: float, warning: str | None) -> list[str]:
    """The lines the user is told about a plane's scale: the factor it was segmented at (when not
    1) and `scale_warning`'s line (when any)."""
    notes = [f"segmented resampled x{factor:.2f} (the model's training scale)"] if factor != 1.0 else []
    return notes + ([warning] if warning else [])


def _worm_sizes(pred, score_threshold: float) -> tuple[float, float]:
    """(mean width `foreground_width`, median length `worm_lengths`; px, 0 = not measured) of the
    worms found at or above the model's own score threshold; length from MIN_WORMS_FOR_LENGTH
    worms or more (one fragment would mislead a median)."""
    found = pred.masks[np.asarray(pred.scores) >= score_threshold]
    width = foreground_width(found.any(0)) if len(found) else 0.0
    length = float(np.median(worm_lengths(found))) if len(found) >= MIN_WORMS_FOR_LENGTH else 0.0
    return width, length


def _size_correction(config, width: float, length: float, factor: float) -> float | None:
    """The further factor that brings worms found (`_worm_sizes` of an image segmented at
    `factor`) to the model's size: the geometric mean of the width and length corrections
    (`factor_from_width`, `factor_from_length`), whichever is known; None when neither is. Each
    cue errs where the other does not: blur makes small worms look as wide as the model's, worms
    far larger than the model's are found in pieces that look as long as its worms."""
    known = [c for c in (factor_from_width(config, width * factor), factor_from_length(config, length * factor))
             if c is not None]
    return float(np.prod(known) ** (1 / len(known))) if known else None


def _auto_correction(config, width: float, length: float, factor: float) -> float | None:
    """`_size_correction` where it is beyond AUTO_MIN_CHANGE (what "auto" resamples by, and what
    `scale_warning` warns of); None within it or when nothing is known."""
    correction = _size_correction(config, width, length, factor)
    return None if correction is None or abs(correction - 1.0) <= AUTO_MIN_CHANGE else correction


def segment_plane(model, plane: np.ndarray, rescale: float | str | None = None, pixel_size: float | None = None,
                  **predict_args):
    """Segment one plane at the scale the model was trained at. rescale: None (the default: the
    pixel-size factor when both the pixel size and the model's training pixel size are known, else
    "auto"), "auto" (passes measure the worms' length and width, `_size_correction`; a plane whose
    worms are within AUTO_MIN_CHANGE of the model's is segmented once, as is) or a number (the
    factor; 1 = as is). Returns the Prediction in the plane's pixels, the factor used and a warning
    line (or None) from `scale_warning`."""
    factor = 1.0
    if rescale not in (None, "auto"):
        factor = float(rescale)
        if not FACTOR_RANGE[0] <= factor <= FACTOR_RANGE[1]:
            raise ValueError(f"rescale factor {factor} outside {FACTOR_RANGE[0]}-{FACTOR_RANGE[1]}")
    elif rescale is None:
        by_pixel_size = factor_from_pixel_size(model.config, pixel_size)
        if by_pixel_size:
            rescale = factor = by_pixel_size
    threshold = model.config.score_threshold
    pred = model.predict(plane, scale=factor, **predict_args)
    width, length = _worm_sizes(pred, threshold)
    # "auto": a network sees worms far from its own scale partly as worms of its scale (fragments),
    # so one measurement under-states a large shift; up to AUTO_PASSES corrections, each measured
    # at the previous factor, until one is within AUTO_MIN_CHANGE
    for _ in range(AUTO_PASSES if rescale in (None, "auto") else 0):
        correction = _auto_correction(model.config, width, length, factor)
        if correction is None:
            break
        factor = float(np.clip(factor * correction, *FACTOR_RANGE))
        pred = model.predict(plane, scale=factor, **predict_args)
        width, length = _worm_sizes(pred, threshold)
    return pred, factor, scale_warning(model.config, width, factor, length)


def rescale_for_next_plane(rescale: float | str | None, factor: float, pred) -> float | str | None:
    """The `rescale` for a stack's next plane: a factor chosen automatically on a plane with worms
    holds for the whole stack (its frames share one microscope; time series stay comparable);
    until then, and for a given factor, `rescale` as it was."""
    if rescale in (None, "auto") and len(pred.masks):
        return factor
    return rescale
