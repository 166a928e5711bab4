"""Mask representation round trip: perfect boxes and masks -> M x M -> pasted back, no network.

Measures how much accuracy the mask representation alone costs on the BBBC010
training masks: torchvision's stock path (project_masks_on_boxes + paste_masks_in_image)
vs this project's aligned targets and aligned pasting.

    python benchmarks/mask_round_trip.py [--data ../shared/data/bbbc010] [--resolution 28]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image, project_masks_on_boxes

from semiconv.data import Bbbc010Folder
from semiconv.evaluation import coco_metrics, matching_summary
from semiconv.model.masks import paste_masks_aligned, project_masks_aligned


def round_trip(folder: Bbbc010Folder, resolution: int = 28, method: str = "aligned", wells=None) -> dict:
    preds, truths = [], []
    for name in wells or folder.wells:
        well = folder.load(name)
        masks = torch.from_numpy(well.masks).float()
        boxes = torch.from_numpy(well.boxes)
        idx = torch.arange(len(masks))
        if method == "aligned":
            small = project_masks_aligned(masks, boxes, idx, resolution)
            back = paste_masks_aligned(small, boxes, masks.shape[1:]) >= 0.5
        else:
            small = project_masks_on_boxes(masks, boxes, idx, resolution)
            back = paste_masks_in_image(small[:, None], boxes, masks.shape[1:])[:, 0] >= 0.5
        preds.append((back.numpy(), np.ones(len(back))))
        truths.append(well.masks)
    return {**coco_metrics(preds, truths), **matching_summary(preds, truths)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/bbbc010")
    parser.add_argument("--resolution", type=int, default=28)
    args = parser.parse_args()
    folder = Bbbc010Folder(args.data)
    table = {m: round_trip(folder, args.resolution, m) for m in ("torchvision", "aligned")}
    print(json.dumps({m: {k: round(v, 4) for k, v in r.items() if isinstance(v, float)} for m, r in table.items()}, indent=2))


if __name__ == "__main__":
    main()
