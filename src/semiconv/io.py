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


def read_array(path: str | os.PathLike, allow_no_planes: bool = False) -> np.ndarray:
    """Read a TIFF (any dimensionality) or a PNG/JPEG into a numpy array.

    Raises InputError for a missing, empty or undecodable file, and for one that holds no
    pixels (unless `allow_no_planes`: a 0 x H x W stack, e.g. the instances of an image
    without worms).
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
    if array.size == 0 and not (allow_no_planes and array.ndim >= 3 and array.shape[0] == 0 and min(array.shape[1:]) > 0):
        raise InputError(f"{path}: holds no image data")
    return array


def read_instance_stack(path: str | os.PathLike) -> np.ndarray:
    """Read a `<stem>_instances.tif` (N x H x W, one plane per worm; H x W read as one worm;
    N may be 0: an image without worms) as N x H x W bool."""
    array = read_array(path, allow_no_planes=True)
    if array.ndim not in (2, 3):
        raise InputError(f"{path}: an instance stack is N x H x W, this file is {' x '.join(map(str, array.shape))}")
    return (array > 0).reshape((-1,) + array.shape[-2:])


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


def output_folder(path: str | os.PathLike) -> Path:
    """The folder `path`, made (with its parents) where missing; InputError where it is a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: a file, not a folder: give a folder for the outputs")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path}: cannot make the output folder ({exc.strerror})") from None
    return path


@contextmanager
def atomic_path(target: str | os.PathLike, overwrite: bool = False):
    """Yield a temporary path next to `target`; move it into place on success.

    Nothing is left behind if the body raises. Refuses to replace an existing
    file unless `overwrite` is true.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target}: exists already (pass overwrite to replace it)")
    output_folder(target.parent)
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


def write_tiff(path: str | os.PathLike, array: np.ndarray, overwrite: bool = False, rgb: bool = False,
               axes: str | None = None) -> Path:
    """Write `array` as a (compressed) TIFF atomically; return the path. Grey planes unless `rgb`
    (H x W x 3|4): a stack of 3 or 4 planes (worms, frames) stays a stack, not one colour image.
    `axes` (e.g. "TYX", one letter per dimension) writes an ImageJ hyperstack, so that ImageJ
    and Fiji see time frames rather than slices."""
    import warnings

    import tifffile

    with atomic_path(path, overwrite=overwrite) as tmp, warnings.catch_warnings():
        # a 0 x H x W stack (no worms) is written as tifffile writes it, which it and
        # read_instance_stack read back; its "nonconformant" warning is expected here
        warnings.filterwarnings("ignore", message=".*zero-size array", category=UserWarning)
        hyperstack = {"imagej": True, "metadata": {"axes": axes}} if axes else {}
        tifffile.imwrite(str(tmp), np.asarray(array), compression="zlib", photometric="rgb" if rgb else "minisblack",
                         **hyperstack)
    return Path(path)


def write_label_image(path: str | os.PathLike, labels: np.ndarray, time_lapse: bool = False,
                      overwrite: bool = False) -> Path:
    """Write a label image (H x W; T x H x W when `time_lapse`, written as ImageJ time frames;
    other leading axes kept as slices) as uint16 TIFF atomically; return the path. Labels outside
    0-65535 are refused: they do not fit."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() > np.iinfo(np.uint16).max):
        raise ValueError("labels outside 0-65535 do not fit a uint16 label image")
    axes = "TYX" if time_lapse and labels.ndim == 3 else None
    return write_tiff(path, labels.astype(np.uint16), overwrite=overwrite, axes=axes)


def write_text(path: str | os.PathLike, text: str, overwrite: bool = False) -> Path:
    """Write text atomically; return the path."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        Path(tmp).write_text(text)
    return Path(path)
