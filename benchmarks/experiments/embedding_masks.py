"""Masks from the embedding: each worm's affinity K(seed, u) at native resolution instead of (or
cutting) the 28 x 28 mask head's mask, on held-out wells; no training.

    python benchmarks/experiments/embedding_masks.py --data data/bbbc010-train.npz --model runs/long-fold0
        [--fold 0] [--threads 1]

For every detection (score >= 0.05, after the model's NMS and containment, as `semiconv evaluate`
keeps them): K_i(u) = exp(-||Psi_seed_i - Psi_u|| / sigma), Psi at every pixel (Phi upsampled
from stride 4 plus exact pixel coordinates). Variants, each cleaned from the model's score
threshold up as the model cleans its own (growth into foreground, largest piece). (The mask head's
masks where K_i >= a came out identical to embedding@a on two wells: its masks already hold K's.)
    head            the model's masks (mask head, cut by the foreground head)
    embedding@a     K_i >= a, cut by the foreground head (probability >= the model's threshold)
    head|K@a        the model's masks plus foreground pixels with K_i >= a inside the box + 8 px
Scored on the fold's 10 wells (avAP, AP, TP/(TP+FP+FN)@0.5 and @0.9, matched masks with IoU >=
0.8) and on 10 of the model's own training wells (to see whether the same `a` wins there).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cross_validate import scored  # noqa: E402

from semiconv.data.folds import FOLDS, fold_split  # noqa: E402
from semiconv.data.packed import PackedWells  # noqa: E402
from semiconv.inference import load_model  # noqa: E402
from semiconv.postprocess import cleaned, postprocess  # noqa: E402

AFFINITIES = (0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)
MARGIN = 8  # px around the detector's box where head|K may add pixels


def affinity_maps(pred, boxes: np.ndarray) -> list[np.ndarray]:
    """K_i over the box grown by MARGIN (zero elsewhere), H x W float32 per detection."""
    H, W = pred.foreground.shape
    maps = []
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        r0, r1 = max(0, int(y1) - MARGIN), min(H, int(np.ceil(y2)) + MARGIN)
        c0, c1 = max(0, int(x1) - MARGIN), min(W, int(np.ceil(x2)) + MARGIN)
        k = np.zeros((H, W), np.float32)
        k[r0:r1, c0:c1] = pred.affinity(i, (slice(r0, r1), slice(c0, c1)))
        maps.append(k)
    return maps


def variants(model, image) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(masks, scores) of every variant for one image."""
    thresholds = model.thresholds()
    x, _ = model.network_input(image)
    raw = model.raw_outputs(x, min_score=0.05, dense=True)
    pred = postprocess(raw, dataclasses.replace(thresholds, score=0.05), model.config.coord_scale,
                       clean_from=thresholds.score)
    scores = pred.scores
    out = {"head": (pred.masks, scores)}
    if not len(scores):
        return {**out, **{f"{v}@{a}": (pred.masks, scores) for v in ("embedding", "head|K") for a in AFFINITIES}}
    k = np.stack(affinity_maps(pred, pred.boxes))
    allowed = pred.foreground >= thresholds.foreground
    box_zone = k > 0
    for a in AFFINITIES:
        near = k >= a
        for name, masks in ((f"embedding@{a}", near & allowed[None]),
                            (f"head|K@{a}", pred.masks | (near & allowed[None] & box_zone))):
            out[name] = (cleaned(masks, scores, pred.foreground, thresholds, thresholds.score), scores)
    return out


def score_wells(model, wells) -> dict[str, dict]:
    per_variant: dict[str, list] = {}
    for well in wells:
        for name, pair in variants(model, well.brightfield).items():
            per_variant.setdefault(name, []).append(pair)
    truths = [w.masks for w in wells]
    table = {}
    for name, preds in per_variant.items():
        m = scored(preds, truths, model.config.score_threshold)
        table[name] = {k: round(float(m[k]), 4) for k in ("avAP", "AP", "score@0.5", "score@0.9")}
        table[name]["matched_iou_0.8"] = round(float(m["census"]["matched_iou_0.8_fraction"]), 4)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="packed .npz (semiconv data pack)")
    parser.add_argument("--model", required=True, help="a model trained without --fold's wells")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the tables here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model, device="cpu")
    source = PackedWells(args.data)
    training_wells = fold_split(args.fold, source.wells)[0][::4][:10]
    report = {"model": args.model, "fold": args.fold, "training_wells": training_wells}
    for part, names in (("held_out", list(FOLDS[args.fold])), ("training", training_wells)):
        report[part] = score_wells(model, [source.load(w) for w in names])
        print(f"## {part} wells", flush=True)
        for name, row in report[part].items():
            print(f"{name:14s} " + " ".join(f"{k} {v:.4f}" for k, v in row.items()), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
