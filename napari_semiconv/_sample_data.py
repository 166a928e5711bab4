"""napari sample data: each bundled BBBC010 well on its own, and the synthetic stack.

A well opens as its bright-field image (visible) with its Sytox fluorescence and ground-truth
worms (hidden), so Segment works on what the user sees."""

from __future__ import annotations

from semiconv.io import read_array
from semiconv.resources import sample_data_dir

from ._layers import image_layer
from ._reader import read_bbbc010_folder


def bbbc010_well(well: str) -> list[tuple]:
    """One bundled BBBC010 well: bright-field (visible), fluorescence and ground truth (hidden)."""
    return read_bbbc010_folder(sample_data_dir() / "bbbc010", wells=[well])


def bbbc010_c01() -> list[tuple]:
    return bbbc010_well("C01")


def bbbc010_c02() -> list[tuple]:
    return bbbc010_well("C02")


def bbbc010_b20() -> list[tuple]:
    return bbbc010_well("B20")


def synthetic_sample() -> list[tuple]:
    """The bundled synthetic worm stack (T x H x W) and its labels."""
    root = sample_data_dir() / "synthetic"
    return [
        image_layer(read_array(root / "synthetic_worms.tif"), "synthetic worms", colormap="gray"),
        (read_array(root / "synthetic_worms_labels.tif"), {"name": "synthetic worms ground truth", "visible": False}, "labels"),
    ]
