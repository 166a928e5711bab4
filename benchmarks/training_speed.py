"""Training-step throughput on the CPU: today's fp32 step against the fast step, side by side.

    python benchmarks/training_speed.py --data data/bbbc010-train.npz [--threads 2] [--steps 6]
        [--variants fp32-old bf16-old fast fast-recipe] [--json out.json]
        [--old-weights FOLDER --recipe-weights FOLDER] [--weights VARIANT FOLDER ...]

Every variant runs the training loop's own step (semiconv.training.loop.Trainer: autocast,
gradient clipping, optimiser, schedule) on a freshly built model (same seed) and pre-made batches of real BBBC010
crops (the same crops where batch and crop size agree; augmentation excluded from the timing,
its cost per batch printed on its own), each variant in a process of its own (its own memory
allocator, as in a real training run: semiconv.allocator's setting is process-wide); the
variants take turns step by step (so the machine's drifts touch all alike), and after two
warm-up steps each the median seconds per step, crop pixels per second and the ratio to the
first variant are reported. By default every
variant starts from fresh weights; a trained model's step costs more (its RPN proposes real
worms, so more RoIs reach the mask and embedding heads): --old-weights / --recipe-weights start
the old-model variants / fast-recipe from trained model folders of their own architecture (the
eight-stage bundle: `git show 5e71f61^:src/semiconv/models/bbbc010-brightfield/weights.pt`
with its config.json; the bundled model for fast-recipe). Variants:
- fp32-old: the bundled model's recipe as trained until 2026-11-29 (its model config pinned in
  benchmarks/configs/bbbc010-eight-stage-recipe.json: RPN pre-NMS 1000, GroupNorm in the whole
  U-Net; fp32, NCHW, torchvision's roi_align backward, AdamW one parameter at a time, glibc's
  default memory release, batch 4 of 320 px).
- bf16-old: the same with bf16 autocast (what bf16 gave before the fast step).
- fast: the same model and batches with the defaults now: bf16 autocast (where the CPU has
  it), channels-last, the vectorised RoIAlign backward and GroupNorm layout
  (semiconv.network.pooling / norm), the fused AdamW, freed memory kept (semiconv.allocator).
- fast-recipe: the long-run recipe (benchmarks/configs/bbbc010-long.json: its model, batch
  and crop size) with the fast step.
- a path to a recipe config (.json, like bbbc010-long.json): that recipe's model, batch and crop
  size with the fast step (a candidate for a lighter recipe; trained weights for it with
  --weights CONFIG FOLDER).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import roi_align

import semiconv.network.pooling as pooling
from semiconv.allocator import keep_freed_memory
from semiconv.config import ModelConfig, TrainConfig
from semiconv.data.packed import open_wells
from semiconv.model_folders import read_model_folder
from semiconv.training.loop import Trainer
from semiconv.training.samples import make_batch, samples_from_bbbc010

RECIPE = Path(__file__).parent / "configs" / "bbbc010-long.json"
OLD_RECIPE = Path(__file__).parent / "configs" / "bbbc010-eight-stage-recipe.json"  # the model the issue timed


def torchvision_roi_align(feature, rois, output_size, spatial_scale, sampling_ratio):
    """The pooling before the fast backward: torchvision's kernel everywhere."""
    return roi_align(feature, rois, output_size, spatial_scale, sampling_ratio, aligned=True)


def variant_settings(name: str) -> tuple[ModelConfig, TrainConfig, bool]:
    """(model config, train config with its arithmetic, fast pooling) of a variant."""
    old = json.loads(OLD_RECIPE.read_text())
    model = ModelConfig.from_dict(old["model"])
    train = TrainConfig.from_dict(old["train"])
    if name == "fp32-old":
        return model, replace(train, channels_last=False, autocast_bf16=False, keep_freed_memory=False), False
    if name == "bf16-old":
        return model, replace(train, channels_last=False, autocast_bf16=True, keep_freed_memory=False), False
    if name == "fast":
        return model, replace(train, autocast_bf16=True), True
    if name == "fast-recipe" or name.endswith(".json"):  # the long run's recipe, or another recipe config
        recipe = json.loads((RECIPE if name == "fast-recipe" else Path(name)).read_text())
        model = ModelConfig.from_dict({**model.to_dict(), **recipe["model"]})
        return model, replace(TrainConfig.from_dict(recipe["train"]), autocast_bf16=True), True
    raise ValueError(f"unknown variant {name!r}")


class Variant:
    """One variant: a `semiconv.training.loop.Trainer` (the training loop's own step: autocast,
    gradient clipping, fused AdamW, schedule) and pre-made batches; `step(i)` times one step."""

    def __init__(self, name: str, samples, steps: int, out: Path, seed: int = 0, weights: Path | None = None):
        self.name = name
        self.model_config, self.train_config, self.fast = variant_settings(name)
        init_state = read_model_folder(weights)[1] if weights else None
        # process-wide, as in `semiconv.training.loop.train` (each variant runs in a process of its own)
        self.kept_freed_memory = self.train_config.keep_freed_memory and keep_freed_memory()
        self.trained = weights is not None
        rng = np.random.default_rng(seed)
        start = time.perf_counter()
        tc = self.train_config
        self.batches = [make_batch(samples, tc.batch_size, tc.crop_size, rng, tc.augment, False) for _ in range(steps)]
        self.making = (time.perf_counter() - start) / steps
        self.run = Trainer(samples, [], self.model_config, replace(tc, num_threads=0), out / name, torch.device("cpu"),
                           init_state=init_state)
        if not self.fast:  # the old recipe's optimiser: AdamW one parameter at a time (not fused; as Trainer.resume sets it)
            for group in self.run.optimizer.param_groups:
                group["fused"], group["foreach"] = False, False
        self.run.network.train()
        self.times = []

    def step(self, i: int) -> None:
        pooling.aligned_roi_align = FAST_POOLING if self.fast else torchvision_roi_align
        start = time.perf_counter()
        self.run.step(*self.batches[i])
        self.times.append(time.perf_counter() - start)

    def row(self, warmup: int) -> dict:
        tc, seconds = self.train_config, statistics.median(self.times[warmup:])
        return {"variant": self.name, "batch": tc.batch_size, "crop": tc.crop_size,
                "backbone": self.model_config.backbone_depth, "bf16": self.run.bf16, "channels_last": tc.channels_last,
                "fast_pooling": self.fast, "keeps_freed_memory": self.kept_freed_memory, "trained_weights": self.trained, "seconds_per_step": round(seconds, 3),
                "crop_pixels_per_s": round(tc.batch_size * tc.crop_size ** 2 / seconds),
                "batch_making_s": round(self.making, 3)}


FAST_POOLING = pooling.aligned_roi_align


def serve_variant(connection, name: str, data: Path, threads: int, steps: int, weights: Path | None) -> None:
    """A variant's process: builds it, then runs step i for every i received; None ends it (its row is sent back)."""
    torch.set_num_threads(threads)
    folder = open_wells(data)
    samples = samples_from_bbbc010(folder, folder.wells[:20], ModelConfig())
    with tempfile.TemporaryDirectory() as scratch:
        variant = Variant(name, samples, steps, Path(scratch), weights=weights)
        connection.send("ready")
        while (i := connection.recv()) is not None:
            variant.step(i)
            connection.send(variant.times[-1])
        connection.send(variant.row(warmup=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="BBBC010-layout folder or packed .npz (semiconv data pack)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per variant (after 2 warm-up steps)")
    parser.add_argument("--variants", nargs="+", default=["fp32-old", "bf16-old", "fast", "fast-recipe"])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--old-weights", type=Path, help="trained model folder of the eight-stage recipe's model (old variants)")
    parser.add_argument("--recipe-weights", type=Path, help="trained model folder of the long recipe's model (fast-recipe)")
    parser.add_argument("--weights", nargs=2, action="append", default=[], metavar=("VARIANT", "FOLDER"),
                        help="trained model folder for one variant (e.g. a recipe config's own run)")
    args = parser.parse_args()
    chosen = {name: Path(folder) for name, folder in args.weights}
    if unknown := set(chosen) - set(args.variants):
        parser.error(f"--weights for variants not in --variants: {', '.join(sorted(unknown))}")
    context = multiprocessing.get_context("spawn")
    workers = []
    for name in args.variants:
        ours, theirs = context.Pipe()
        weights = chosen.get(name, args.recipe_weights if name == "fast-recipe" else
                             None if name.endswith(".json") else args.old_weights)
        process = context.Process(target=serve_variant, args=(theirs, name, args.data, args.threads, args.steps + 2, weights))
        process.start()
        if ours.recv() != "ready":
            raise RuntimeError(f"variant {name} did not start")
        workers.append((ours, process))
    for i in range(args.steps + 2):  # interleaved: each round one step of every variant, so drifts in
        for connection, _ in workers:  # the machine's speed touch all variants alike; one runs at a time
            connection.send(i)
            connection.recv()
    rows = []
    for connection, process in workers:
        connection.send(None)
        rows.append(connection.recv())
        process.join()
    base = rows[0]["crop_pixels_per_s"]
    for row in rows:
        row["throughput_vs_first"] = round(row["crop_pixels_per_s"] / base, 2)
    print("| variant | backbone | batch x crop | bf16 | channels-last | fast pooling | freed memory kept | s / step | crop px / s | x first | batch making s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | R{r['backbone']} | {r['batch']} x {r['crop']} | {r['bf16']} | {r['channels_last']} | "
              f"{r['fast_pooling']} | {r['keeps_freed_memory']} | {r['seconds_per_step']} | {r['crop_pixels_per_s']:,} | {r['throughput_vs_first']} | {r['batch_making_s']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
