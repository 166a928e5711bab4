"""Mask representation round trip: perfect boxes and masks -> M x M -> pasted back, no network.

Measures how much accuracy the mask representation alone costs on the BBBC010
training masks: torchvision's stock path (project_masks_on_boxes + paste_masks_in_image)
vs this project's aligned targets and aligned pasting.

    python benchmarks/experiments/mask_round_trip.py --data ../shared/data/bbbc010 [--resolution 28]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from semiconv.data import Bbbc010Folder
from semiconv.metrics import evaluate_predictions
from semiconv.network.masks import round_trip_masks


def round_trip(folder: Bbbc010Folder, resolution: int = 28, method: str = "aligned", wells=None) -> dict:
    """COCO AP and matching scores of every well's true masks after `round_trip_masks`."""
    preds, truths = [], []
    for name in wells or folder.wells:
        well = folder.load(name)
        back = round_trip_masks(torch.from_numpy(well.masks).float(), torch.from_numpy(well.boxes), resolution, method)
        preds.append((back.numpy(), np.ones(len(back))))
        truths.append(well.masks)
    return evaluate_predictions(preds, truths)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="BBBC010-layout folder")
    parser.add_argument("--resolution", type=int, default=28)
    args = parser.parse_args()
    folder = Bbbc010Folder(args.data)
    table = {m: round_trip(folder, args.resolution, m) for m in ("torchvision", "aligned")}
    print(json.dumps({m: {k: round(v, 4) for k, v in r.items() if isinstance(v, float)} for m, r in table.items()}, indent=2))


if __name__ == "__main__":
    main()
