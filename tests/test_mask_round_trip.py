"""The mask representation must not cost accuracy on thin worms (issue: aligned targets and pasting)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from mask_round_trip import round_trip  # noqa: E402

from semiconv.data import Bbbc010Folder  # noqa: E402


def test_aligned_round_trip_on_all_training_masks(bbbc010_root):
    folder = Bbbc010Folder(bbbc010_root)
    aligned = round_trip(folder, 28, "aligned")
    assert aligned["avAP"] >= 0.99 and aligned["score@0.9"] >= 0.97 and aligned["AP"] >= 0.97
    stock = round_trip(folder, 28, "torchvision", wells=folder.wells[:10])
    assert stock["avAP"] < aligned["avAP"]  # the stock path is measurably worse
