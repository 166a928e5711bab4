"""Thresholds for test-time augmentation (semiconv.tta), chosen on a fold's held-out wells.

    python benchmarks/release/choose_tta_thresholds.py MODEL_FOLDER --data data/bbbc010-train.npz
        --fold 0 [--threads 2] [--write]

Scores each held-out well of the fold twice, as the model runs by default and with test-time
augmentation, each with its thresholds chosen on those wells by the training loop's own search
(`semiconv.calibration.choose_from_outputs`: the protocol that chose the model's own thresholds,
so the two rows compare alike), and prints both rows (avAP, AP, TP/(TP+FP+FN) at IoU 0.5 and
0.9, crossing recall) with the network time per image. `--write` stores the augmented run's
thresholds in the folder's config.json as `tta_thresholds` (what `semiconv segment --tta` uses).
The model must not have trained on the fold's wells.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

KEYS = ("avAP", "AP", "AP50", "AP75", "score@0.5", "score@0.9", "overlap_recall@0.5", "overlap_recall@0.8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", required=True, help="BBBC010-layout folder or packed .npz (semiconv data pack)")
    parser.add_argument("--fold", type=int, required=True)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="store the chosen thresholds in MODEL/config.json")
    args = parser.parse_args()

    import torch

    from semiconv.calibration import MIN_SCORE, choose_from_outputs
    from semiconv.config import CHOSEN_THRESHOLDS, save_json
    from semiconv.data.folds import fold_split
    from semiconv.data.packed import open_wells
    from semiconv.inference import cached_model

    if args.threads:
        torch.set_num_threads(args.threads)
    source = open_wells(args.data)
    trained_on = set(json.loads((args.model / "config.json").read_text()).get("data", {}).get("train", []))
    _, held = fold_split(args.fold, source.wells)
    if overlap := sorted(trained_on & set(held)):
        parser.error(f"the model trained on wells of fold {args.fold}: {', '.join(overlap)}")
    loaded = [source.load(w) for w in held]
    truths = [w.masks for w in loaded]
    plain = cached_model(args.model, device="cpu")
    inputs = [plain.network_input(w.brightfield)[0] for w in loaded]  # the same for both rows
    rows = {}
    for tta in (False, True):
        model = cached_model(args.model, device="cpu", tta=tta)  # the same network, loaded once
        start = time.perf_counter()
        raws = [model.raw_outputs(x, min_score=MIN_SCORE, dense=False) for x in inputs]
        seconds = (time.perf_counter() - start) / len(inputs)
        _, metrics = choose_from_outputs(lambda raws=raws: iter(raws), truths, model.config)
        rows["tta" if tta else "plain"] = {"network_s_per_image": round(seconds, 2), **{k: metrics[k] for k in (*KEYS, *CHOSEN_THRESHOLDS)}}
        del raws
    print(f"fold {args.fold}, {len(held)} held-out wells, thresholds chosen on them for each row")
    print("| run | " + " | ".join(KEYS) + " | network s / image | thresholds (score / mask / fg / containment) |")
    print("|---" * (len(KEYS) + 3) + "|")
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in KEYS) + f" | {row['network_s_per_image']} | "
              + " / ".join(str(row[k]) for k in CHOSEN_THRESHOLDS) + " |")
    print(json.dumps({"fold": args.fold, "wells": held, **rows}, default=float))
    if args.write:
        payload = json.loads((args.model / "config.json").read_text())
        payload["model"]["tta_thresholds"] = {k: rows["tta"][k] for k in CHOSEN_THRESHOLDS}
        payload["tta_thresholds_chosen_on"] = {"fold": args.fold, "wells": held, "date": time.strftime("%Y-%m-%d")}
        save_json(args.model / "config.json", payload)
        print(f"wrote tta_thresholds to {args.model / 'config.json'}")


if __name__ == "__main__":
    main()
