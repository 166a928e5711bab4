"""Reproduce the previous bundled model (`bbbc010-brightfield` until 2026-11-30; today's comes
from one config, benchmarks/configs/bbbc010-long.json) in one command: the eight training stages
of docs/benchmarks.md in order (each from the previous one's best model), then the mask
clean-up and thresholds chosen on the validation wells, then bundling.

    python benchmarks/release/reproduce_bundled_model.py --data ../shared/data/bbbc010 [--runs runs/repro]
        [--name bbbc010-brightfield-repro] [--device auto] [--dry-run]

Re-running it resumes: a stage whose folder holds a finished run (its log reached the last
step) is skipped, an interrupted one continues from its checkpoint (`--resume`). The bundle
goes under a new name unless --name bbbc010-brightfield is given. On this 2-core CPU the
stages took about 6 h 20 min in all (measured stage by stage, docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from semiconv.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "benchmarks" / "configs"

# (run folder, initialised from, config, CPU threads): stage 1 first
STAGES = [
    ("bf_semiconv", None, "bbbc010-brightfield-stage1.json", 2),
    ("bf_foreground", "bf_semiconv", "bbbc010-foreground.json", 1),
    ("bf_joint", "bf_foreground", "bbbc010-joint.json", 1),
    ("bf_fgunet", "bf_joint", "bbbc010-foreground-unet.json", 2),
    ("bf_joint_unet", "bf_fgunet", "bbbc010-joint-unet.json", 2),
    ("bf_fg_noblur", "bf_joint_unet", "bbbc010-foreground-noblur.json", 2),
    ("bf_joint_noblur", "bf_fg_noblur", "bbbc010-joint-noblur.json", 2),
    ("bf_joint_noblur2", "bf_joint_noblur", "bbbc010-joint-noblur2.json", 2),
]


def final_step(config: Path) -> int:
    """The step a stage's config ends at (`TrainConfig.final_step`)."""
    return TrainConfig.from_dict(json.loads(config.read_text()).get("train", {})).final_step


def finished(run: Path, config: Path) -> bool:
    log = run / "log.jsonl"
    if not (run / "weights.pt").exists() or not log.exists():
        return False
    steps = [json.loads(line).get("step", 0) for line in log.read_text().splitlines() if line.strip()]
    return max(steps, default=0) >= final_step(config)


def commands(data: str, runs: Path, name: str, device: str) -> list[list[str]]:
    """Every command of the reproduction, in order (stages already finished included)."""
    out = []
    for folder, init, config, threads in STAGES:
        cmd = [sys.executable, "-m", "semiconv", "train", "--data", data, "--out", str(runs / folder),
               "--config", str(CONFIGS / config), "--device", device, "--threads", str(threads)]
        if init:
            cmd += ["--init", str(runs / init)]
        out.append(cmd)
    clean = runs / "bf_s8_clean"
    out.append([sys.executable, str(ROOT / "benchmarks" / "release" / "choose_cleanup.py"), str(clean), "--data", data,
                "--variants", "3:on", "--write"])
    out.append([sys.executable, str(ROOT / "benchmarks" / "release" / "bundle_model.py"), str(clean), "--name", name])
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="BBBC010-layout folder (e.g. ../shared/data/bbbc010)")
    parser.add_argument("--runs", default="runs/repro")
    parser.add_argument("--name", default="bbbc010-brightfield-repro")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and what would be skipped")
    args = parser.parse_args()
    runs = Path(args.runs)
    cmds = commands(args.data, runs, args.name, args.device)
    for (folder, _, config, _), cmd in zip(STAGES, cmds, strict=False):
        run = runs / folder
        if finished(run, CONFIGS / config):
            print(f"# {folder}: finished, skipped")
            continue
        if (run / "checkpoints" / "last.pt").exists():
            cmd = [*cmd, "--resume"]
        print(shlex.join(cmd), flush=True)
        if not args.dry_run:
            subprocess.run(cmd, check=True)
    clean = runs / "bf_s8_clean"
    print(f"# copy {runs / STAGES[-1][0]} (config.json, weights.pt) to {clean}")
    if not args.dry_run:
        clean.mkdir(parents=True, exist_ok=True)
        for file in ("config.json", "weights.pt"):
            (clean / file).write_bytes((runs / STAGES[-1][0] / file).read_bytes())
    for cmd in cmds[len(STAGES):]:
        print(shlex.join(cmd), flush=True)
        if not args.dry_run:
            subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
