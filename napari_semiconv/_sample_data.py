"""napari sample data: bundled BBBC010 wells and the synthetic stack."""

from __future__ import annotations

from semiconv.io import read_array
from semiconv.resources import sample_data_dir

from ._layers import image_layer
from ._reader import read_bbbc010_folder


def bbbc010_sample() -> list[tuple]:
    """The bundled BBBC010 wells: bright-field, fluorescence and ground-truth worms per well."""
    return read_bbbc010_folder(sample_data_dir() / "bbbc010")


def synthetic_sample() -> list[tuple]:
    """The bundled synthetic worm stack (T x H x W) and its labels."""
    root = sample_data_dir() / "synthetic"
    return [
        image_layer(read_array(root / "synthetic_worms.tif"), "synthetic worms", colormap="gray"),
        (read_array(root / "synthetic_worms_labels.tif"), {"name": "synthetic worms ground truth", "visible": False}, "labels"),
    ]
