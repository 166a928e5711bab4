"""napari reader: TIFF/PNG images and stacks, BBBC010-layout folders, `_instances.tif` outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semiconv.data.bbbc010 import Bbbc010Folder, is_bbbc010_folder
from semiconv.data.generic import is_annotated_folder, list_annotated_folder, load_pair
from semiconv.editing import read_result
from semiconv.errors import InputError
from semiconv.io import IMAGE_SUFFIXES, read_array

from ._layers import image_layer, instance_layers, plane_layers


def get_reader(path):
    """Return a reader function for `path`, or None if this plugin cannot read it."""
    if isinstance(path, list):
        if not path:
            return None
        readers = [get_reader(p) for p in path]
        if any(r is None for r in readers):
            return None
        return lambda paths: [layer for p in paths for layer in get_reader(p)(p)]
    p = Path(path)
    if p.is_dir():
        if result_stems(p):
            return read_result_folder
        if is_bbbc010_folder(p):
            return read_bbbc010_folder
        return read_annotated_folder if is_annotated_folder(p) else None
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return read_file
    return None


def result_stems(folder: Path) -> list[str]:
    """Stems of the results in a folder written by Export or `semiconv segment` (`<stem>_worms.csv`
    beside its instance stack(s))."""
    stems = sorted(p.name[: -len("_worms.csv")] for p in Path(folder).glob("*_worms.csv"))
    return [s for s in stems if (Path(folder) / f"{s}_instances.tif").exists()
            or any(Path(folder).glob(f"{s}_t[0-9][0-9][0-9]_instances.tif"))]


def read_result_folder(path) -> list[tuple]:
    """An exported folder back: per result, its worms with their overlaps and table (edited,
    reviewed, doubt kept), ready to correct and export again."""
    layers = []
    for stem in result_stems(Path(path)):
        planes, rows = read_result(Path(path), stem)
        layers += plane_layers(planes, rows, stem, {"source": str(path)})
    if not layers:
        raise InputError(f"{path}: no results (<stem>_worms.csv with <stem>_instances.tif)")
    return layers


def read_file(path) -> list[tuple]:
    """Read one image; a `*_instances.tif` (N x H x W) becomes labels layers."""
    p = Path(path)
    stem = p.stem
    array = read_array(p, allow_no_planes=stem.endswith("_instances"))  # 0 x H x W: an image without worms
    if stem.endswith("_instances") and array.ndim == 3:
        return instance_layers(array > 0, stem[: -len("_instances")], visible_stack=True)
    if stem.endswith("_labels") and np.issubdtype(array.dtype, np.integer):
        return [(array, {"name": stem}, "labels")]
    rgb = array.ndim == 3 and array.shape[-1] in (3, 4)
    return [image_layer(array, stem, rgb=rgb)]


def read_bbbc010_folder(path, wells=None) -> list[tuple]:
    """Bright-field, fluorescence and per-worm masks of the wells of a BBBC010 folder (stacked over wells)."""
    folder = Bbbc010Folder(path)
    wells = list(wells or folder.wells)
    if not wells:
        raise InputError(f"{path}: no usable wells")
    layers = []
    for name in wells:
        well = folder.load(name)
        layers.append(image_layer(well.brightfield, f"{name} bright-field", colormap="gray"))
        if well.fluorescence is not None:
            layers.append(image_layer(well.fluorescence, f"{name} fluorescence", colormap="magma", blending="additive", visible=False))
        for data, kwargs, kind in instance_layers(well.masks, f"{name} ground truth"):
            kwargs["visible"] = False
            kwargs["metadata"] = {**kwargs.get("metadata", {}), "well": name, "source": str(path)}
            layers.append((data, kwargs, kind))
    return layers


def read_annotated_folder(path) -> list[tuple]:
    """An annotated folder (images/ + annotations/, as saved by the Fine-tune widget): each image and its worms."""
    pairs, _ = list_annotated_folder(path)
    if not pairs:
        raise InputError(f"{path}: no annotated images")
    layers = []
    for image_path, ann_path in pairs:
        item = load_pair(image_path, ann_path)
        layers.append(image_layer(item.image, item.name, colormap="gray"))
        layers.extend(instance_layers(item.masks, f"{item.name} annotation"))
    return layers
