"""napari sample data: each bundled BBBC010 well on its own, well C01 as a time-lapse, and the
synthetic stack.

A well opens as its bright-field image (visible) with its Sytox fluorescence and ground-truth
worms (hidden), so Segment works on what the user sees."""

from __future__ import annotations

import numpy as np

from semiconv.data import Bbbc010Folder
from semiconv.data.instances import stack_to_labels
from semiconv.data.moving import MotionConfig, moving_worms
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


#: Frames of the time-lapse sample (about 2 s to make on 2 cores).
CRAWLING_FRAMES = 12


def crawling_c01() -> list[tuple]:
    """Well C01's own annotated worms crawling over its background for CRAWLING_FRAMES frames
    (`semiconv.data.moving`, seed 0: no public annotated worm time-lapse exists), to try "track
    worms across frames": the T x H x W stack (visible) and the true identities (hidden; worm n
    has label n + 1 in every frame; where worms cross, the one annotated first is shown)."""
    well = Bbbc010Folder(sample_data_dir() / "bbbc010").load("C01")
    seq = moving_worms(well.brightfield, well.masks, seed=0, config=MotionConfig(frames=CRAWLING_FRAMES))
    truth = np.stack([stack_to_labels(masks) for masks in seq.masks])
    return [
        image_layer(seq.frames, "C01 crawling", colormap="gray"),
        (truth, {"name": "C01 crawling true identities", "visible": False}, "labels"),
    ]


def synthetic_sample() -> list[tuple]:
    """The bundled synthetic worm stack (T x H x W) and its labels."""
    root = sample_data_dir() / "synthetic"
    return [
        image_layer(read_array(root / "synthetic_worms.tif"), "synthetic worms", colormap="gray"),
        (read_array(root / "synthetic_worms_labels.tif"), {"name": "synthetic worms ground truth", "visible": False}, "labels"),
    ]
