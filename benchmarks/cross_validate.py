"""Cross-validation of a training recipe over the 50 wells of BBBC010's training half.

    python benchmarks/cross_validate.py --data data/bbbc010-train.npz --config benchmarks/configs/bbbc010-recipe.json \
        --runs runs/cv [--folds 0 1 2 3 4] [--final] [--fit] [--parallel 6] [--workers 8] [--device auto] [--threads 0]
        [--train-only | --evaluate-only] [--no-shifted]

1. One `semiconv train --fold K` per fold (semiconv.data.folds: 10 held-out wells each), and with
   --final one `semiconv train --all-wells`, run `--parallel` at a time (several trainings share
   one GPU well); a finished run is skipped, an interrupted one resumed. --train-only stops here.
2. Out-of-fold predictions: each held-out well predicted by the model that never saw it; the
   thresholds (score, mask, foreground, containment) chosen on the pooled out-of-fold outputs
   (semiconv.calibration.choose_from_outputs).
3. Per fold and pooled, at those thresholds: COCO AP / AP50 / AP75, TP/(TP+FP+FN) at 0.5-0.9,
   avAP, overlap recall, and the error census (semiconv.metrics.error_census); also on a
   shifted copy of the held-out wells (benchmarks/finetune_domain_shift.py's "moderate" shift)
   for robustness.
4. --final: the out-of-fold thresholds written into the all-wells model's config.json (the model
   to ship; bundle with benchmarks/release/bundle_model.py); --fit: its fit on its own 50 training wells.
`--workers` processes share the threshold search and the post-processing.
Writes RUNS/cv.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

KEYS = ("AP", "AP50", "AP75", "score@0.5", "score@0.9", "avAP", "overlap_recall@0.5", "overlap_recall@0.8")
CENSUS = ("missed", "merged", "rough", "not_found", "missed_touching", "false_positives", "fragment", "merge", "off_worm", "other",
          "matched_iou_0.8_fraction")


def train_command(data: str, config: str, out: Path, device: str, threads: int, fold: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "semiconv", "train", "--data", data, "--config", config, "--out", str(out),
           "--device", device, "--threads", str(threads)]
    cmd += ["--fold", str(fold)] if fold is not None else ["--all-wells"]
    if (out / "checkpoints" / "last.pt").exists():
        cmd.append("--resume")
    return cmd


def finish_record(out: Path) -> dict | None:
    """The "finished" record of the training in `out` (steps reached, training seconds; the loop
    logs it when a run reaches its end by steps or time budget), or None while it has not."""
    log = out / "log.jsonl"
    lines = log.read_text().splitlines() if log.exists() else []
    return next((json.loads(line)["finished"] for line in reversed(lines) if '"finished"' in line), None)


def finished(out: Path) -> bool:
    """Whether the training in `out` ran to its end and left its model."""
    return (out / "weights.pt").exists() and finish_record(out) is not None


def run_trainings(jobs: list[tuple[Path, list[str]]], parallel: int) -> dict:
    """Run `semiconv train` commands, `parallel` at a time; returns wall seconds per run folder."""
    def one(job):
        out, cmd = job
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with open(out.parent / f"{out.name}.log", "a") as log:
            code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
        if code:
            raise RuntimeError(f"{' '.join(cmd)} failed ({code}); see {out.parent / (out.name + '.log')}")
        return out.name, round(time.perf_counter() - start, 1)

    with ThreadPoolExecutor(max(1, parallel)) as pool:
        return dict(pool.map(one, jobs))


def outputs_of(model, images):
    """Raw outputs (semiconv.network_outputs, at calibration's MIN_SCORE) of images, one at a time."""
    from semiconv.calibration import MIN_SCORE

    for image in images:
        x, _ = model.network_input(image)
        yield model.raw_outputs(x, min_score=MIN_SCORE, dense=False)


def _postprocessed(args) -> tuple:
    from semiconv.postprocess import postprocess

    raw, thresholds, coord_scale = args
    p = postprocess(raw, dataclasses.replace(thresholds, score=0.05), coord_scale, clean_from=thresholds.score)
    return p.masks, p.scores


def predictions(model, images, thresholds, pool=None) -> list:
    """(masks, scores) per image: every detection >= MIN_SCORE (for COCO AP), cleaned from the
    score threshold up, as `semiconv evaluate` does; raw outputs are dropped as they go (in
    `pool`'s processes when given)."""
    jobs = ((raw, thresholds, model.config.coord_scale) for raw in outputs_of(model, images))
    if pool is None:
        return [_postprocessed(job) for job in jobs]
    out, pending = [], []
    for job in jobs:
        pending.append(pool.submit(_postprocessed, job))
        while len(pending) > 16:
            out.append(pending.pop(0).result())
    return out + [job.result() for job in pending]


def scored(preds, truths, score_threshold) -> dict:
    from semiconv.metrics import error_census, evaluate_predictions

    metrics = evaluate_predictions(preds, truths, score_threshold)
    return {**{m: metrics[m] for m in KEYS}, "census": error_census(preds, truths, score_threshold)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="BBBC010-layout folder or packed .npz (semiconv data pack)")
    parser.add_argument("--config", required=True)
    parser.add_argument("--runs", required=True)
    parser.add_argument("--folds", type=int, nargs="*", default=[0, 1, 2, 3, 4], help="none: only --final / --fit")
    parser.add_argument("--final", action="store_true", help="also train on all 50 wells; it gets the out-of-fold thresholds")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="processes for the threshold search and post-processing")
    parser.add_argument("--fit", action="store_true", help="score the all-wells model on its own training wells")
    parser.add_argument("--train-only", action="store_true", help="run the trainings, nothing else")
    parser.add_argument("--evaluate-only", action="store_true", help="no training: evaluate the finished runs")
    parser.add_argument("--no-shifted", action="store_true", help="skip the shifted copy of the held-out wells")
    args = parser.parse_args()

    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import torch

    from semiconv.calibration import choose_from_outputs
    from semiconv.config import ModelConfig, save_json
    from semiconv.data.bbbc010 import Bbbc010Folder, is_bbbc010_folder
    from semiconv.data.folds import FOLDS, fold_split
    from semiconv.data.packed import PackedWells
    from semiconv.inference import load_model
    from semiconv.postprocess import Thresholds

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from finetune_domain_shift import shift

    if args.threads:
        torch.set_num_threads(args.threads)
    runs = Path(args.runs)
    report_path = runs / "cv.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    report.update(config=args.config, data=args.data)
    folds = {k: runs / f"fold{k}" for k in args.folds}
    final = runs / "final"
    wanted = [(out, k) for k, out in folds.items()] + ([(final, None)] if args.final else [])
    jobs = [(out, train_command(args.data, args.config, out, args.device, args.threads, k))
            for out, k in wanted if not finished(out) and not args.evaluate_only]
    report.setdefault("train_seconds", {}).update(run_trainings(jobs, args.parallel))
    for out, _ in wanted:  # steps reached and training time, from each run's own log
        report.setdefault("trained", {})[out.name] = finish_record(out)
    save_json(report_path, report)
    if args.train_only:
        print(json.dumps(report, indent=1))
        return

    source = Bbbc010Folder(args.data) if is_bbbc010_folder(args.data) else PackedWells(args.data)
    pool = ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) if args.workers > 1 else None
    if folds:
        # thresholds chosen on the pooled out-of-fold outputs (streamed twice: raw outputs are large)
        held = {k: [source.load(w) for w in fold_split(k, source.wells)[1]] for k in folds}  # read once
        truths = {k: [w.masks for w in held[k]] for k in folds}

        def out_of_fold():
            for k, out in folds.items():
                model = load_model(out, device=args.device)
                yield from outputs_of(model, [w.brightfield for w in held[k]])

        config = load_model(next(iter(folds.values())), device="cpu").config
        start = time.perf_counter()
        threshold, chosen = choose_from_outputs(out_of_fold, [t for k in folds for t in truths[k]], config, args.workers)
        report["threshold_search_seconds"] = round(time.perf_counter() - start, 1)
        thresholds = Thresholds.of(config.with_thresholds(chosen))
        report.update(folds={k: list(FOLDS[k]) for k in folds}, thresholds=dataclasses.asdict(thresholds), per_fold={})
        pooled, pooled_truths, moved, moved_truths = [], [], [], []
        for k, out in folds.items():
            model = load_model(out, device=args.device)
            preds = predictions(model, [w.brightfield for w in held[k]], thresholds, pool)
            report["per_fold"][k] = scored(preds, truths[k], thresholds.score)
            pooled += preds
            pooled_truths += truths[k]
            if not args.no_shifted:
                shifted = [shift(w.brightfield, w.masks, sum(map(ord, w.well))) for w in held[k]]
                moved += predictions(model, [image for image, _ in shifted], thresholds, pool)
                moved_truths += [m for _, m in shifted]
        report["pooled"] = scored(pooled, pooled_truths, thresholds.score)
        if moved:
            report["pooled_shifted"] = scored(moved, moved_truths, thresholds.score)
        report["evaluation_seconds"] = round(time.perf_counter() - start, 1)
        if args.final and finished(final):
            payload = json.loads((final / "config.json").read_text())
            payload["model"] = ModelConfig.from_dict(payload["model"]).with_thresholds(chosen).to_dict()
            payload["thresholds_chosen_by"] = "benchmarks/cross_validate.py (pooled out-of-fold predictions)"
            save_json(final / "config.json", payload)
            report["final_model"] = str(final)
        save_json(report_path, json.loads(json.dumps(report, default=_plain)))
    if args.fit and finished(final):
        model = load_model(final, device=args.device)  # its fit on its own training wells (all 50)
        wells = [source.load(w) for w in source.wells]
        report["training_wells_fit"] = scored(predictions(model, [w.brightfield for w in wells], model.thresholds(), pool),
                                              [w.masks for w in wells], model.config.score_threshold)
    if pool is not None:
        pool.shutdown()
    save_json(report_path, json.loads(json.dumps(report, default=_plain)))
    print_table(report)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else str(value)


def print_table(report: dict) -> None:
    print("| fold | " + " | ".join(KEYS) + " |")
    print("|---" * (len(KEYS) + 1) + "|")
    rows = [(k, row) for k, row in report.get("per_fold", {}).items()]
    rows += [(name, report[key]) for name, key in (("pooled out-of-fold", "pooled"), ("pooled, shifted copy", "pooled_shifted"),
                                                   ("fit on training wells", "training_wells_fit")) if key in report]
    for name, row in rows:
        print(f"| {name} | " + " | ".join(f"{row[m]:.3f}" for m in KEYS) + " |")
    if "pooled" in report:
        print("census (pooled): " + ", ".join(f"{c} {report['pooled']['census'][c]:.3g}" for c in CENSUS))


if __name__ == "__main__":
    main()
