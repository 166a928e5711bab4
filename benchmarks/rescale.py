"""Images at another magnification: segmenting them as they are vs at the model's scale.

    python benchmarks/rescale.py --data data/bbbc010-train.npz [--model bbbc010-brightfield]
        [--wells B17 B18 ...] [--magnification 0.8] [--factors 1.2 1.3 ...] [--threads 2]

The wells (default: the bundled model's 10 validation wells, which it never trained on) are
shown as another microscope would: magnified by `--magnification` (masks likewise), blurred
(sigma 1 px), gamma 0.8, contrast 0.6 on a floor of 0.3, noise sd 0.03, 8-bit. Each is segmented
as is (rescale 1), at the exact inverse factor (what a user who knows the pixel size gets), and
with the default rescale "auto" (semiconv.scale.segment_plane); COCO AP, TP/(TP+FP+FN)@0.5, avAP for each, the
factors "auto" chose, and how many images warned. Unshifted wells, as is, for reference.
`--factors`: the shifted wells also at these fixed factors (how sharply accuracy depends on the factor).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from scipy import ndimage as ndi

from semiconv.data.packed import open_wells
from semiconv.inference import load_model
from semiconv.metrics import evaluate_predictions
from semiconv.normalize import normalize_percentile
from semiconv.scale import resample_plane, segment_plane

VALIDATION = ["B17", "B18", "B19", "B20", "B21", "B22", "B23", "B24", "C01", "C02"]


def another_microscope(image: np.ndarray, masks: np.ndarray, magnification: float, seed: int):
    """(8-bit image, masks) as another microscope at `magnification` would show the well."""
    rng = np.random.default_rng(seed)
    x = resample_plane(np.clip(normalize_percentile(image), 0, None).astype(np.float32), magnification)
    m = resample_plane(masks.astype(np.float32), magnification) > 0.5 if len(masks) else masks
    m = m[m.reshape(len(m), -1).any(1)] if len(m) else m
    x = 0.3 + 0.6 * np.clip(x, 0, 1) ** 0.8
    x = ndi.gaussian_filter(x, 1.0) + rng.normal(0, 0.03, x.shape)
    return (np.clip(x, 0, 1) * 255).astype(np.uint8), m


def scores(preds, truths, threshold) -> dict:
    metrics = evaluate_predictions(preds, truths, threshold)
    return {k: round(float(metrics[k]), 3) for k in ("AP", "AP50", "AP75", "score@0.5", "avAP")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="BBBC010-layout folder or packed .npz")
    parser.add_argument("--model", default="bbbc010-brightfield")
    parser.add_argument("--wells", nargs="+", default=VALIDATION)
    parser.add_argument("--magnification", type=float, default=0.8)
    parser.add_argument("--factors", type=float, nargs="*", default=[],
                        help="also segment the shifted wells at these fixed factors")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    source = open_wells(args.data)
    model = load_model(args.model, device="cpu")
    wells = [source.load(w) for w in args.wells]
    shifted = [another_microscope(w.brightfield, w.masks, args.magnification, sum(map(ord, w.well))) for w in wells]
    truths = [m for _, m in shifted]
    modes = {"native wells, as is": 1.0, "native wells, auto (the default)": None, "shifted, as is": 1.0,
             "shifted, exact factor": 1 / args.magnification, "shifted, auto (the default)": None,
             **{f"shifted, factor {f:g}": f for f in args.factors}}
    report = {"model": args.model, "wells": args.wells, "magnification": args.magnification}
    for name, rescale in modes.items():
        images = [w.brightfield for w in wells] if name.startswith("native") else [image for image, _ in shifted]
        start = time.perf_counter()
        preds, factors, warned = [], [], 0
        for image in images:
            pred, factor, warning = segment_plane(model, image, rescale, score_threshold=0.05, dense=False,
                                                  clean_from=model.config.score_threshold)
            preds.append((pred.masks, pred.scores))
            factors.append(round(factor, 2))
            warned += warning is not None
        report[name] = {**scores(preds, [w.masks for w in wells] if name.startswith("native") else truths,
                                 model.config.score_threshold),
                        "factors": factors, "warned": warned, "seconds_per_image": round((time.perf_counter() - start) / len(images), 2)}
        print(name, json.dumps(report[name]), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
