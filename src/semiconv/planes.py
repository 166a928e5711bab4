"""The one rule for what gets segmented: which arrays are planes, and how colour becomes grey.

Used by `semiconv segment`, `semiconv batch`, the napari widgets, training and fine-tuning,
so a model sees the same intensities at inference as in training.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

#: RGB -> luminance (ITU-R BT.709, the weights of skimage.color.rgb2gray); alpha is ignored.
LUMINANCE_WEIGHTS = np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)


def looks_rgb(array: np.ndarray) -> bool:
    """Whether an array without other metadata is a colour image: H x W x 3/4 (or a stack of them).

    A T x H x W stack whose last axis happens to be 3 or 4 pixels wide is not a real image."""
    return array.ndim in (3, 4) and array.shape[-1] in (3, 4) and array.shape[-3] > 4


def _spatial_ndim(image, rgb: bool | None, name: str) -> int:
    """2 (one plane) or 3 (a stack of planes) for `image` (any array-like: only its shape is read).
    Raises InputError for other shapes."""
    rgb = looks_rgb(image) if rgb is None else rgb
    spatial = image.ndim - (1 if rgb else 0)
    if spatial not in (2, 3):
        raise InputError(f"{name}: cannot segment an array of shape {image.shape}: "
                         "use 2-D images or T x H x W stacks (optionally RGB)")
    return spatial


def split_planes(image: np.ndarray, rgb: bool | None = None, name: str = "image") -> list[np.ndarray]:
    """Planes to segment, in order: H x W (or H x W x RGB) -> [image]; T x H x W (or T x H x W x RGB)
    -> T planes. `rgb`: whether the last axis is colour (napari knows; None = `looks_rgb`).
    Raises InputError for other shapes."""
    image = np.asarray(image)
    return [image] if _spatial_ndim(image, rgb, name) == 2 else list(image)


def first_plane(image, rgb: bool | None = None, name: str = "image", max_pixels: int | None = None) -> np.ndarray | None:
    """`split_planes(image)[0]`, reading only that plane from a lazy stack (dask, zarr); None when
    it has more than `max_pixels` pixels (then nothing is read). Raises InputError as split_planes."""
    plane = image if _spatial_ndim(image, rgb, name) == 2 else image[0]
    if max_pixels is not None and plane.shape[0] * plane.shape[1] > max_pixels:
        return None
    return np.asarray(plane)


def grey_planes(image: np.ndarray, rgb: bool | None = None, name: str = "image") -> list[np.ndarray]:
    """`split_planes`, each plane made grey (`grey_plane`): T planes of H x W float32."""
    return [grey_plane(plane, name)[0] for plane in split_planes(image, rgb, name)]


def grey_plane(image: np.ndarray, name: str = "image") -> tuple[np.ndarray, bool]:
    """One plane as H x W float32, and whether it was converted from colour (luminance weights).

    Accepts H x W or H x W x 3/4. Raises InputError for other shapes, empty arrays, unsupported
    dtypes and NaN/Inf values."""
    image = np.asarray(image)
    if image.size == 0:
        raise InputError(f"{name}: image is empty (shape {image.shape})")
    if image.dtype == bool:
        image = image.astype(np.uint8)
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise InputError(f"{name}: unsupported dtype {image.dtype}")
    converted = image.ndim == 3 and image.shape[-1] in (3, 4)
    if converted:
        image = image[..., :3].astype(np.float32) @ LUMINANCE_WEIGHTS
    if image.ndim != 2:
        raise InputError(f"{name}: expected a 2-D image (H x W or H x W x RGB), got shape {image.shape}")
    image = image.astype(np.float32, copy=False)
    if not np.isfinite(image).all():
        raise InputError(f"{name}: image contains NaN or Inf values")
    return image, converted
