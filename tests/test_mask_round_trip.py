"""The mask representation must not cost accuracy on thin worms (aligned targets and pasting)."""

import numpy as np
import torch

from semiconv.data import Bbbc010Folder
from semiconv.metrics import evaluate_predictions
from semiconv.network.masks import round_trip_masks


def scores_after_round_trip(folder, method, wells):
    preds, truths = [], []
    for well in map(folder.load, wells):
        back = round_trip_masks(torch.from_numpy(well.masks).float(), torch.from_numpy(well.boxes), 28, method)
        preds.append((back.numpy(), np.ones(len(back))))
        truths.append(well.masks)
    return evaluate_predictions(preds, truths)


def test_aligned_round_trip_on_all_training_masks(bbbc010_root):
    folder = Bbbc010Folder(bbbc010_root)
    aligned = scores_after_round_trip(folder, "aligned", folder.wells)
    assert aligned["avAP"] >= 0.99 and aligned["score@0.9"] >= 0.97 and aligned["AP"] >= 0.97
    stock = scores_after_round_trip(folder, "torchvision", folder.wells[:10])
    aligned_10 = scores_after_round_trip(folder, "aligned", folder.wells[:10])
    assert stock["avAP"] < aligned_10["avAP"] - 0.02  # the stock path is measurably worse
