"""Where a long training run stands, on wells it never trained on and on its own training wells.

    python benchmarks/milestone.py RUN --data data/bbbc010-train.npz --fold 0 [--fit] [--shifted]
        [--threads 2] [--tta] [--out record.json]

RUN is a `semiconv train --fold K` folder (its model, weights.pt: the best so far by held-out
avAP) or one of its validated/step-NNNNNN/ folders (`--keep-validated`: the model at that
validation), each with the thresholds the training loop chose on the held-out fold, scored on the
fold's 10 held-out wells: COCO AP / AP50 / AP75, TP/(TP+FP+FN) at 0.5 and 0.9, avAP, recall of
worms touching another (crossing) at IoU 0.5 and 0.8, and the error census (missed: merged /
rough / not found, and how many touch another worm; false positives: fragment / merge /
off-worm); with --fit the same on its 40 training wells, with --shifted on the shifted copy of
the held-out wells (benchmarks/finetune_domain_shift.py's "moderate" shift). Appends one
record to the run's milestones.jsonl (only for a training run's model, never a bundled model's)
and prints it with the run's held-out learning curve (every validation in its log.jsonl) and
its milestones so far (held-out, fit and shifted avAP by step); --out also writes the record as
JSON to that file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_validate import CENSUS, KEYS, predictions, scored  # noqa: E402


def learning_curve(run: Path | None) -> list[dict]:
    """Every held-out validation the training loop logged: step, avAP, score@0.5, AP."""
    lines = (run / "log.jsonl").read_text().splitlines() if run is not None else []
    records = [json.loads(line)["validation"] for line in lines if '"validation"' in line]
    return [{k: r.get(k) for k in ("step", "avAP", "score@0.5", "AP", "overlap_recall@0.8")} for r in records]


def milestone_curve(run: Path | None) -> list[dict]:
    """The run's milestones so far, by step: held-out, fit (training wells) and shifted avAP (3 decimals)."""
    path = run / "milestones.jsonl" if run is not None else None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path and path.exists() else []
    rows = [{"step": r.get("step"), **{name: round(r[name]["avAP"], 3) for name in ("held_out", "training_wells", "held_out_shifted")
                                       if name in r}} for r in records]
    return sorted(rows, key=lambda row: row["step"] or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--data", required=True, help="BBBC010-layout folder or packed .npz")
    parser.add_argument("--fold", type=int, required=True)
    parser.add_argument("--fit", action="store_true", help="also score the training wells")
    parser.add_argument("--shifted", action="store_true", help="also score the shifted copy of the held-out wells")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--tta", action="store_true", help="segment with test-time augmentation (semiconv.tta) at the model's tta_thresholds")
    parser.add_argument("--out", type=Path, help="also write the record as JSON here")
    args = parser.parse_args()

    import torch

    from semiconv.data.folds import fold_split
    from semiconv.data.packed import open_wells
    from semiconv.inference import load_model
    from semiconv.training.loop import training_run_of

    if args.threads:
        torch.set_num_threads(args.threads)
    source = open_wells(args.data)
    train_wells, held_wells = fold_split(args.fold, source.wells)
    model = load_model(args.run, device="cpu", tta=args.tta)
    meta = json.loads((args.run / "config.json").read_text())
    thresholds = model.thresholds()
    record = {"date": time.strftime("%Y-%m-%d %H:%M"), "model": str(args.run), "step": meta.get("step"), "fold": args.fold, "tta": args.tta,
              "thresholds": {"score": thresholds.score, "mask": thresholds.mask, "foreground": thresholds.foreground,
                             "containment": thresholds.containment}}
    sets = {"held_out": held_wells}
    if args.fit:
        sets["training_wells"] = train_wells
    start = time.perf_counter()
    for name, wells in sets.items():
        loaded = [source.load(w) for w in wells]
        preds = predictions(model, [w.brightfield for w in loaded], thresholds)
        record[name] = scored(preds, [w.masks for w in loaded], thresholds.score)
        if name == "held_out" and args.shifted:
            from finetune_domain_shift import shift

            moved = [shift(w.brightfield, w.masks, sum(map(ord, w.well))) for w in loaded]
            preds = predictions(model, [image for image, _ in moved], thresholds)
            record["held_out_shifted"] = scored(preds, [m for _, m in moved], thresholds.score)
    record["seconds"] = round(time.perf_counter() - start, 1)
    run = training_run_of(args.run)  # None for a bundled model's folder (the package's files)
    if run is not None:
        with open(run / "milestones.jsonl", "a") as fh:
            fh.write(json.dumps(record, default=float) + "\n")
    else:
        print(f"not recorded: {args.run} is not a training run's model (no log.jsonl in it or its run)", file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps(record, default=float, indent=1))

    print(f"step {record['step']}, fold {args.fold}, thresholds {record['thresholds']}")
    print("| wells | " + " | ".join(KEYS) + " |")
    print("|---" * (len(KEYS) + 1) + "|")
    for name in ("held_out", "held_out_shifted", "training_wells"):
        if name in record:
            print(f"| {name} | " + " | ".join(f"{record[name][k]:.3f}" for k in KEYS) + " |")
    census = record["held_out"]["census"]
    print("held-out census: " + ", ".join(f"{c} {census[c]:.3g}" for c in CENSUS))
    print("learning curve (held-out, training loop): " + json.dumps(learning_curve(run)))
    print("milestones (avAP: held-out, training wells, shifted): " + json.dumps(milestone_curve(run)))


if __name__ == "__main__":
    main()
