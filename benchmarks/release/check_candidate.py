"""Is a model ready to ship? The targets of the accuracy issue (#21) and of the tracking issue (#24),
measured on one fold's held-out wells with one command.

    python benchmarks/release/check_candidate.py MODEL --data data/bbbc010-train.npz --out DIR
        [--fold 0] [--seeds 0] [--threads 2] [--skip-speed]

MODEL: a model folder (a float16 bundle from bundle_model.py, or a `semiconv train` folder or one of
its validated steps) that never trained on fold FOLD's wells. Each measurement runs as its own
process, the benchmark script as it is run alone, and leaves its JSON in DIR:

    milestone.json   benchmarks/milestone.py MODEL --fold FOLD --fit --shifted
    tracking8.json   benchmarks/tracking.py --model MODEL --wells <the fold's wells> --frames 8
    tracking30.json  the same with --frames 30
    (both with --seeds SEEDS: each well's sequence made with each seed; IDF1 is the mean over them)
    speed.json       benchmarks/speed.py --model MODEL (not with --skip-speed)

A measurement whose file is already in DIR is not run again, so a check cut short resumes where it
stopped (each file appears only once its script has finished); a file made for another model (or,
for tracking, other seeds) is refused. Then every target is printed with its
figure and whether it is met, and written to DIR/targets.json; beside each IDF1 target, the IDF1 of
the same detections with perfect identities (tracking.py's `tracked_true_identities`: what no
linking can pass, so a miss is the detector's when that too is under the bound). Run it with the machine otherwise
idle: the speed figures are only fair then (a training run beside it: `kill -STOP` its process first).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1]

# (name, file, path to the figure, "min" or "max", bound): the figure must be >= (min) or <= (max) the bound.
TARGETS = (
    ("held-out avAP (#21)", "milestone", ("held_out", "avAP"), "min", 0.80),
    ("held-out TP/(TP+FP+FN)@0.5 (#21)", "milestone", ("held_out", "score@0.5"), "min", 0.94),
    ("held-out crossing recall @0.8 (#21)", "milestone", ("held_out", "overlap_recall@0.8"), "min", 0.70),
    ("fit: avAP on the training wells (#21)", "milestone", ("training_wells", "avAP"), "min", 0.85),
    ("avAP drop on the shifted copy (#21)", "milestone", ("shifted_drop",), "max", 0.10),
    ("s per 520 x 696 image, all maps (#21)", "speed", ("ours_s_per_image",), "max", 1.0),
    ("time / stock maskrcnn_resnet50_fpn (#21)", "speed", ("ratio_ours_over_stock",), "max", 0.25),
    ("weights MB (#21)", "weights", ("mb",), "max", 25.0),
    ("8 frames: usual label (#24)", "tracking8", ("summary", "tracked", "usual_label"), "min", 0.95),
    ("8 frames: IDF1 (#24)", "tracking8", ("summary", "tracked", "idf1_mean"), "min", 0.90),
    ("8 frames: linking share of segmentation (#24)", "tracking8", ("summary", "link_share_of_segmentation"), "max", 0.10),
    ("30 frames: usual label (#24)", "tracking30", ("summary", "tracked", "usual_label"), "min", 0.95),
    ("30 frames: IDF1 (#24)", "tracking30", ("summary", "tracked", "idf1_mean"), "min", 0.90),
    ("30 frames: linking share of segmentation (#24)", "tracking30", ("summary", "link_share_of_segmentation"), "max", 0.10),
)


def commands(model: Path, data: str, fold: int, seeds: list[int], threads: int) -> dict[str, list[str]]:
    """Each measurement's command line, by the name of its JSON file in `out`; "{tmp}" stands for the
    file it writes before it is renamed into place."""
    from semiconv.data.folds import held_out_wells

    wells = held_out_wells(fold)
    py = sys.executable
    tracking = [py, str(BENCHMARKS / "tracking.py"), "--data", data, "--model", str(model), "--wells", *wells,
                "--seeds", *map(str, seeds), "--threads", str(threads), "--out", "{tmp}"]
    return {
        "milestone": [py, str(BENCHMARKS / "milestone.py"), str(model), "--data", data, "--fold", str(fold),
                      "--fit", "--shifted", "--threads", str(threads), "--out", "{tmp}"],
        "tracking8": tracking + ["--frames", "8"],
        "tracking30": tracking + ["--frames", "30"],
        "speed": [py, str(BENCHMARKS / "speed.py"), "--model", str(model), "--threads", str(threads)],
    }


def measure(name: str, command: list[str], out: Path) -> dict:
    """Run one measurement unless out/<name>.json exists; its JSON (written through a temporary file,
    or taken from the script's printed JSON where it has no --out)."""
    target = out / f"{name}.json"
    if not target.exists():
        tmp = out / f".{name}.json.part"
        log = out / f"{name}.log"
        print(f"{name}: {' '.join(command)}", flush=True)
        with open(log, "w") as fh:
            done = subprocess.run([str(tmp) if part == "{tmp}" else part for part in command], stdout=subprocess.PIPE,
                                  stderr=fh, text=True)
        (out / f"{name}.stdout").write_text(done.stdout)
        if done.returncode != 0:
            sys.exit(f"{name} failed (exit {done.returncode}): see {log}")
        if "{tmp}" not in command:  # the script prints its JSON last
            tmp.write_text(done.stdout[done.stdout.index("{"):])
        os.replace(tmp, target)
    return json.loads(target.read_text())


def made_with(result: dict) -> tuple[str | None, list[int] | None]:
    """The model a measurement's JSON was made for, and the sequence seeds for tracking.py's (else None)."""
    if "summary" in result:  # tracking.py
        return result["summary"].get("model"), sorted({seq["seed"] for seq in result["sequences"]})
    return result.get("model"), None


def figure(results: dict, file: str, path: tuple[str, ...]) -> float | None:
    value = results.get(file)
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", required=True, help="BBBC010-layout folder or packed .npz")
    parser.add_argument("--out", type=Path, required=True, help="folder for each measurement's JSON and log")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="sequence seeds of tracking.py (0: the figures of docs/benchmarks.md)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-speed", action="store_true", help="leave out benchmarks/speed.py")
    args = parser.parse_args()
    if not (args.model / "config.json").exists():
        sys.exit(f"{args.model}: not a model folder (no config.json)")
    args.out.mkdir(parents=True, exist_ok=True)

    results: dict[str, dict] = {}
    for name, command in commands(args.model, args.data, args.fold, args.seeds, args.threads).items():
        if name == "speed" and args.skip_speed:
            continue
        results[name] = measure(name, command, args.out)
        model, seeds = made_with(results[name])  # a file left by a check of another model or other seeds is not this check's
        if model != str(args.model) or seeds not in (None, sorted(args.seeds)):
            with_seeds = "" if seeds is None else f" with seeds {seeds}"
            sys.exit(f"{args.out / name}.json was made for model {model}{with_seeds}: use another --out")
    milestone = results["milestone"]
    milestone["shifted_drop"] = milestone["held_out"]["avAP"] - milestone["held_out_shifted"]["avAP"]
    weights = args.model / "weights.pt"
    results["weights"] = {"mb": weights.stat().st_size / 1e6}

    rows = []
    for name, file, path, kind, bound in TARGETS:
        value = figure(results, file, path)
        met = None if value is None else (value >= bound if kind == "min" else value <= bound)
        row = {"target": name, "figure": value, "bound": bound, "kind": kind, "met": met}
        if path[-1] == "idf1_mean":  # what perfect linking of the same detections would reach
            row["perfect_identities"] = figure(results, file, ("summary", "tracked_true_identities", "idf1_mean"))
        rows.append(row)
    report = {"model": str(args.model), "fold": args.fold, "seeds": args.seeds, "step": milestone.get("step"),
              "thresholds": milestone.get("thresholds"), "targets": rows,
              "all_met": all(r["met"] for r in rows if r["met"] is not None)}
    (args.out / "targets.json").write_text(json.dumps(report, indent=1))
    print(f"{args.model} (step {report['step']}), fold {args.fold} held out")
    print("| target | figure | bound | met |\n|---|---|---|---|")
    for r in rows:
        shown = "-" if r["figure"] is None else f"{r['figure']:.3f}"
        if r.get("perfect_identities") is not None:
            shown += f" (perfect identities: {r['perfect_identities']:.3f})"
        sign = ">=" if r["kind"] == "min" else "<="
        print(f"| {r['target']} | {shown} | {sign} {r['bound']} | {'-' if r['met'] is None else 'yes' if r['met'] else 'no'} |")
    print("all measured targets met" if report["all_met"] else "some targets not met")


if __name__ == "__main__":
    main()
