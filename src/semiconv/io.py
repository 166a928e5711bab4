"""Reading images and masks robustly, and writing files atomically.

Every reader raises :class:`~semiconv.errors.InputError` with the file named
and the problem stated, never a bare decoder traceback.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import InputError

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")


def read_array(path: str | os.PathLike) -> np.ndarray:
    """Read a TIFF (any dimensionality) or a PNG/JPEG into a numpy array.

    Raises InputError for a missing, empty or undecodable file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an image file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            array = tifffile.imread(str(path))
        elif suffix in IMAGE_SUFFIXES:
            import imageio.v3 as iio

            array = iio.imread(str(path))
        else:
            raise InputError(
                f"{path}: unsupported file type {suffix!r} (use one of {', '.join(IMAGE_SUFFIXES)})"
            )
    except InputError:
        raise
    except Exception as exc:  # decoder errors come in many types
        raise InputError(f"{path}: cannot be read as an image ({type(exc).__name__}: {exc})") from exc
    array = np.asarray(array)
    if array.size == 0:
        raise InputError(f"{path}: holds no image data")
    return array


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a binary mask image (any nonzero value is foreground) as H x W bool.

    RGB(A) masks use their first channel. Raises InputError on other shapes.
    """
    array = read_array(path)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., 0]
    if array.ndim != 2:
        raise InputError(f"{path}: expected a 2-D mask, got shape {array.shape}")
    return array > 0


def as_grayscale_plane(image: np.ndarray, name: str = "image") -> tuple[np.ndarray, bool]:
    """Return a 2-D float32 view of `image` and whether an RGB conversion happened.

    Accepts H x W, or H x W x 3/4 (RGB/RGBA, converted to luminance).
    Raises InputError for other shapes, empty arrays and NaN/Inf values.
    """
    image = np.asarray(image)
    if image.size == 0:
        raise InputError(f"{name}: image is empty (shape {image.shape})")
    if image.dtype == bool:
        image = image.astype(np.uint8)
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise InputError(f"{name}: unsupported dtype {image.dtype}")
    converted = False
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        weights = np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
        image = image[..., :3].astype(np.float32) @ weights
        converted = True
    if image.ndim != 2:
        raise InputError(f"{name}: expected a 2-D image (H x W or H x W x RGB), got shape {image.shape}")
    image = image.astype(np.float32, copy=False)
    if not np.isfinite(image).all():
        raise InputError(f"{name}: image contains NaN or Inf values")
    return image, converted


@contextmanager
def atomic_path(target: str | os.PathLike, overwrite: bool = False):
    """Yield a temporary path next to `target`; move it into place on success.

    Nothing is left behind if the body raises. Refuses to replace an existing
    file unless `overwrite` is true.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target}: exists already (pass overwrite to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part" + target.suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_tiff(path: str | os.PathLike, array: np.ndarray, overwrite: bool = False) -> Path:
    """Write `array` as a (compressed) TIFF atomically; return the path."""
    import tifffile

    with atomic_path(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(str(tmp), np.asarray(array), compression="zlib")
    return Path(path)


def write_text(path: str | os.PathLike, text: str, overwrite: bool = False) -> Path:
    """Write text atomically; return the path."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        Path(tmp).write_text(text)
    return Path(path)
