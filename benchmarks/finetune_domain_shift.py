"""Fine-tuning evidence: a domain-shifted BBBC010 (not BBBC010's look), 10 annotated images.

Shift (documented, deterministic): each bright-field well is rescaled by 0.7 (bilinear;
masks by the same factor, threshold 0.5), blurred (Gaussian sigma 1.5 px), given a gamma
of 0.5, its contrast halved on a raised floor (x -> 0.5 + 0.5 * x on the normalised
image), and Gaussian noise (sd 0.04).
Fine-tune on 10 shifted training wells (A01-A10); measure on the 10 shifted validation
wells before and after.

    python benchmarks/finetune_domain_shift.py [--base bbbc010-brightfield] [--steps 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.transform import rescale

from semiconv.data import VALIDATION_WELLS, Bbbc010Folder
from semiconv.data.generic import AnnotatedImage
from semiconv.data.instances import boxes_from_masks
from semiconv.evaluation import coco_metrics, matching_summary
from semiconv.inference import load_model
from semiconv.normalize import normalize_percentile
from semiconv.training.finetune import finetune, finetune_config


def shift(image: np.ndarray, masks: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = normalize_percentile(image)
    x = rescale(x, 0.7, order=1, anti_aliasing=True)
    m = np.stack([rescale(k.astype(float), 0.7, order=1) >= 0.5 for k in masks]) if len(masks) else masks
    m = m[m.reshape(len(m), -1).any(1)]
    x = ndi.gaussian_filter(np.clip(x, 0, None), 1.5) ** 0.5
    x = 0.5 + 0.5 * x + rng.normal(0, 0.04, x.shape)
    return x.astype(np.float32), m


def shifted(folder: Bbbc010Folder, wells) -> list[AnnotatedImage]:
    out = []
    for k, w in enumerate(wells):
        well = folder.load(w)
        img, m = shift(well.brightfield, well.masks, k)
        out.append(AnnotatedImage(w, img, m, boxes_from_masks(m)))
    return out


def score(model, items) -> dict:
    preds = []
    for item in items:
        p = model.predict(item.image, score_threshold=0.05, dense=False)
        preds.append((p.masks, p.scores))
    truths = [i.masks for i in items]
    return {**coco_metrics(preds, truths), **matching_summary(preds, truths, model.config.score_threshold)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/bbbc010")
    parser.add_argument("--base", default="bbbc010-brightfield")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = Bbbc010Folder(args.data)
    train_wells = [w for w in folder.wells if w not in VALIDATION_WELLS][:10]
    train, test = shifted(folder, train_wells), shifted(folder, VALIDATION_WELLS)
    before = score(load_model(args.base, device="cpu"), test)
    out = tempfile.mkdtemp() + "/tuned"
    start = time.perf_counter()
    target, result = finetune(train, args.base, out, finetune_config(steps=args.steps), device="cpu")
    seconds = time.perf_counter() - start
    after = score(load_model(target, device="cpu"), test)
    keys = ("AP", "AP50", "AP75", "avAP", "score@0.5")
    print(json.dumps({"train_images": len(train), "test_images": len(test), "steps": result.steps,
                      "finetune_seconds": round(seconds, 1), "threads": args.threads,
                      "before": {k: round(before[k], 3) for k in keys}, "after": {k: round(after[k], 3) for k in keys}}, indent=2))


if __name__ == "__main__":
    main()
