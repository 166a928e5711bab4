"""Generic image + annotation pairs, and the project's own annotated-folder format.

Annotations may be
- a label image (H x W integers, 0 = background; no overlaps possible),
- a per-instance stack TIFF (N x H x W, nonzero = worm; overlaps kept),
- a folder of per-instance PNG masks (one file per worm).

An annotated folder (what `semiconv train/finetune` read besides BBBC010)::

    images/<stem>.tif|png                 2-D image
    annotations/<stem>.tif                label image or N x H x W stack, or
    annotations/<stem>/*.png              one mask per worm
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import IMAGE_SUFFIXES, read_array, read_mask
from ..planes import grey_plane, looks_rgb, split_planes
from .instances import boxes_from_masks, labels_to_stack


@dataclass
class AnnotatedImage:
    """One image (H x W) with its instances (N x H x W bool) and boxes (N x 4)."""

    name: str
    image: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray


def read_image(path: str | Path) -> np.ndarray:
    """Read a 2-D image or a stack (T x H x W), either possibly RGB (H x W x 3/4, T x H x W x 3/4),
    from TIFF/PNG."""
    array = read_array(path)
    if array.ndim not in (2, 3) and not (array.ndim == 4 and looks_rgb(array)):
        raise InputError(f"{path}: expected a 2-D image or a T x H x W stack (optionally RGB), got shape {array.shape}")
    return array


def read_annotations(path: str | Path | list, image_shape: tuple[int, int]) -> np.ndarray:
    """Read instance annotations for a 2-D image of shape (H, W) as N x H x W bool: a label image,
    an N x H x W stack, a folder of one mask per worm, or a list of such mask files."""
    files = [Path(p) for p in path] if isinstance(path, list | tuple) else None
    path = Path(path) if files is None else (files[0].parent if files else Path("."))
    if files is not None or path.is_dir():
        if files is None:
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"{path}: folder holds no mask images")
        masks = [read_mask(p) for p in files]
        for p, m in zip(files, masks, strict=True):
            if m.shape != tuple(image_shape):
                raise InputError(f"{p}: mask shape {m.shape} does not match the image {tuple(image_shape)}")
        stack = np.stack([m for m in masks if m.any()]) if any(m.any() for m in masks) else np.zeros((0, *image_shape), bool)
        return stack
    array = read_array(path)
    if array.ndim == 3 and array.shape[-1] in (3, 4) and array.shape[:2] == tuple(image_shape):
        array = array[..., 0]
    if array.ndim == 2:
        if array.shape != tuple(image_shape):
            raise InputError(f"{path}: label image shape {array.shape} does not match the image {tuple(image_shape)}")
        return labels_to_stack(array)
    if array.ndim == 3:
        if array.shape[1:] != tuple(image_shape):
            raise InputError(f"{path}: stack shape {array.shape} does not match the image {tuple(image_shape)}")
        stack = array > 0
        return stack[stack.reshape(len(stack), -1).any(axis=1)]
    raise InputError(f"{path}: annotations must be 2-D labels or an N x H x W stack, got shape {array.shape}")


def load_pair(image_path: str | Path, annotation_path: str | Path | list) -> AnnotatedImage:
    """Load a 2-D image and its annotations, checking that their sizes agree."""
    image = read_image(image_path)
    planes = split_planes(image, name=str(image_path))
    if len(planes) != 1:
        raise InputError(f"{image_path}: expected a 2-D image for training, got shape {image.shape}")
    image, _ = grey_plane(planes[0], str(image_path))  # the same grey as at inference
    masks = read_annotations(annotation_path, image.shape)
    return AnnotatedImage(Path(image_path).stem, image, masks, boxes_from_masks(masks))


def is_annotated_folder(root: str | Path) -> bool:
    root = Path(root)
    return (root / "images").is_dir() and (root / "annotations").is_dir()


def list_annotated_folder(root: str | Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Pairs (image, annotation) in an annotated folder, and problems met."""
    root = Path(root)
    if not is_annotated_folder(root):
        raise InputError(f"{root}: expected images/ and annotations/ sub-folders")
    pairs, problems = [], []
    for image in sorted((root / "images").iterdir()):
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        candidates = [root / "annotations" / image.stem] + [
            root / "annotations" / f"{image.stem}{s}" for s in (".tif", ".tiff", ".png")
        ]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            problems.append(f"{image}: no annotation found in {root / 'annotations'}; image skipped")
        else:
            pairs.append((image, found))
    return pairs, problems


def save_annotated(root: str | Path, name: str, image: np.ndarray, masks: np.ndarray, overwrite: bool = False) -> None:
    """Write one image and its per-worm stack in the annotated-folder format (atomic)."""
    from ..io import write_tiff

    root = Path(root)
    image = np.asarray(image)
    write_tiff(root / "images" / f"{name}.tif", image, overwrite=overwrite, rgb=looks_rgb(image))
    write_tiff(root / "annotations" / f"{name}.tif", np.asarray(masks, dtype=np.uint8), overwrite=overwrite)
