"""Fine-tuning evidence on a domain-shifted BBBC010 (another microscope's look), 10 annotated images.

Shifts (documented, deterministic per image):
- moderate (default): another microscope's contrast, focus and noise at the same magnification:
  on the normalised image, gamma 0.8, contrast 0.6 on a floor of 0.3, Gaussian blur sigma
  1.2 px, Gaussian noise sd 0.03, stored as 8-bit.
- strong: rescaled by 0.7 (masks likewise), blur sigma 1.5, gamma 0.5, contrast halved on a
  floor of 0.5, noise sd 0.04.
Each seed picks 10 of the 50 training-half wells as the user's annotated images (5 live, 5 dead)
and tests on the other 40 of the same domain, before and after `semiconv finetune` with the
given settings (defaults: `semiconv.training.finetune.FINETUNE_DEFAULTS`).

    python benchmarks/finetune_domain_shift.py [--shift moderate] [--seeds 0 1 2] [--set KEY=VALUE ...] [--threads 2]
        --data ../shared/data/bbbc010 | data/bbbc010-train.npz [--device cpu | cuda]
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

from semiconv.data import Bbbc010Folder
from semiconv.data.bbbc010 import is_bbbc010_folder
from semiconv.data.generic import AnnotatedImage
from semiconv.data.instances import boxes_from_masks
from semiconv.data.packed import PackedWells
from semiconv.inference import load_model
from semiconv.metrics import evaluate_predictions
from semiconv.normalize import normalize_percentile
from semiconv.training.finetune import FINETUNE_VAL_FRACTION, finetune, finetune_config

KEYS = ("AP", "AP50", "AP75", "avAP", "score@0.5")


def shift(image: np.ndarray, masks: np.ndarray, seed: int, kind: str = "moderate") -> tuple[np.ndarray, np.ndarray]:
    """The shifted image (float32 or uint8) and its masks (N x H x W bool)."""
    rng = np.random.default_rng(seed)
    x = np.clip(normalize_percentile(image), 0, None)
    if kind == "moderate":
        x = 0.3 + 0.6 * np.clip(x, 0, 1) ** 0.8
        x = ndi.gaussian_filter(x, 1.2) + rng.normal(0, 0.03, x.shape)
        return (np.clip(x, 0, 1) * 255).astype(np.uint8), masks
    x = rescale(x, 0.7, order=1, anti_aliasing=True)
    m = np.stack([rescale(k.astype(float), 0.7, order=1) >= 0.5 for k in masks]) if len(masks) else masks
    m = m[m.reshape(len(m), -1).any(1)]
    x = ndi.gaussian_filter(x, 1.5) ** 0.5
    x = 0.5 + 0.5 * x + rng.normal(0, 0.04, x.shape)
    return x.astype(np.float32), m


def shifted(folder: Bbbc010Folder, wells, kind: str) -> list[AnnotatedImage]:
    out = []
    for w in wells:
        well = folder.load(w)
        img, m = shift(well.brightfield, well.masks, sum(map(ord, w)), kind)
        out.append(AnnotatedImage(w, img, m, boxes_from_masks(m)))
    return out


def score(model, items) -> dict:
    preds = []
    for item in items:
        p = model.predict(item.image, score_threshold=0.05, dense=False)
        preds.append((p.masks, p.scores))
    truths = [i.masks for i in items]
    return evaluate_predictions(preds, truths, model.config.score_threshold)


def annotated_wells(folder: Bbbc010Folder, seed: int) -> list[str]:
    """10 wells a user might annotate: 5 live (columns 01-12) and 5 dead (13-24), by seed."""
    rng = np.random.default_rng(seed)
    live = [w for w in folder.wells if int(w[1:]) <= 12]
    dead = [w for w in folder.wells if int(w[1:]) > 12]
    return sorted(rng.choice(live, 5, replace=False).tolist() + rng.choice(dead, 5, replace=False).tolist())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="BBBC010-layout folder or packed .npz")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (fine-tuning and scoring)")
    parser.add_argument("--base", default="bbbc010-brightfield")
    parser.add_argument("--shift", default="moderate", choices=("moderate", "strong"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", nargs="*", default=[], help="fine-tune settings KEY=VALUE (TrainConfig fields, val_fraction)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    val_fraction = settings.pop("val_fraction", FINETUNE_VAL_FRACTION)
    folder = Bbbc010Folder(args.data) if is_bbbc010_folder(args.data) else PackedWells(args.data)
    base = load_model(args.base, device=args.device)
    everything = shifted(folder, folder.wells, args.shift)
    by_name = {i.name: i for i in everything}
    for seed in args.seeds:
        chosen = annotated_wells(folder, seed)
        train = [by_name[w] for w in chosen]
        test = [i for i in everything if i.name not in chosen]
        before = score(base, test)
        out = tempfile.mkdtemp() + "/tuned"
        cfg = finetune_config(**{**settings, "seed": seed})
        start = time.perf_counter()
        target, result = finetune(train, args.base, out, cfg, val_fraction=val_fraction, device=args.device, seed=seed)
        seconds = time.perf_counter() - start
        after = score(load_model(target, device=args.device), test)
        print(json.dumps({"shift": args.shift, "seed": seed, "settings": {**settings, "val_fraction": val_fraction},
                          "annotated": chosen, "test_images": len(test), "steps": result.steps,
                          "finetune_seconds": round(seconds, 1), "threads": args.threads, "device": args.device,
                          "before": {k: round(before[k], 3) for k in KEYS}, "after": {k: round(after[k], 3) for k in KEYS},
                          "gain_avAP": round(after["avAP"] - before["avAP"], 3)}), flush=True)


if __name__ == "__main__":
    main()
