"""Inference in bf16 autocast vs fp32 on the CPU: held-out accuracy of one model, same wells.

    python benchmarks/bf16_inference.py --data data/bbbc010-train.npz --model MODEL_DIR_OR_NAME
        [--fold 0] [--threads 1]

Scores the model on cross-validation fold `--fold`'s 10 wells (as benchmarks/cross_validate.py
does: every detection for COCO AP, cleaned from the model's score threshold) once in fp32 and
once in bf16 (`load_model(..., precision="bf16")`: the model's own bf16 autocast; an autocast
around `predict` would be switched off inside it); prints avAP, AP, TP/(TP+FP+FN)@0.5 and the
wall time of each (time only indicative: speed belongs to benchmarks/speed.py on a quiet machine).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_validate import predictions, scored  # noqa: E402

from semiconv.data.folds import FOLDS  # noqa: E402
from semiconv.data.packed import load_packed  # noqa: E402
from semiconv.inference import load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="packed .npz (semiconv data pack)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = {name: load_model(args.model, device="cpu", precision=name) for name in ("fp32", "bf16")}
    wells = load_packed(args.data, wells=list(FOLDS[args.fold]))
    images, truths = [w.brightfield for w in wells], [w.masks for w in wells]
    thresholds = models["fp32"].thresholds()
    results = {}
    for name, model in models.items():
        start = time.perf_counter()
        preds = predictions(model, images, thresholds)
        metrics = scored(preds, truths, thresholds.score)
        results[name] = {k: round(float(metrics[k]), 4) for k in ("avAP", "AP", "score@0.5")}
        results[name]["seconds"] = round(time.perf_counter() - start, 1)
        print(name, json.dumps(results[name]), flush=True)
    print(json.dumps({"avAP_difference": round(results["bf16"]["avAP"] - results["fp32"]["avAP"], 4),
                      "model": args.model, "fold": args.fold}))


if __name__ == "__main__":
    main()
