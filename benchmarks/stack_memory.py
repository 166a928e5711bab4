"""Peak memory of tracking a long stack: `semiconv segment STACK --track` on a 100-frame 520 x 696
sequence of real worms crawling (semiconv.data.moving), against the same command on its first
frame alone, in the same run; with `--napari`, also the Segment widget's job (its worker run to the
end, tracking on, every result layer built and kept as the viewer keeps them; no viewer drawn).

    python benchmarks/stack_memory.py --data data/bbbc010-train.npz [--wells A11 B08] [--frames 100]
        [--threads 2] [--model bbbc010-brightfield] [--napari] [--out stack_memory.json]

Each command runs as a process of its own, started by this small process (the sequences are made
and written by another child first: Linux carries a parent's resident size into its child's
ru_maxrss across exec); its peak resident memory (ru_maxrss from wait4) is what the user's
machine needs. Prints JSON per well: worms found (worm-frames), peak MiB of the
stack and of one frame, and the extra MiB per worm-frame (what a denser stack adds).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tifffile


def peak_of(command: list[str]) -> tuple[float, float]:
    """(peak resident MiB, wall seconds) of one child process; raises if it fails."""
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a child's progress bars cannot fill it and stall
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed: {errors.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, seconds


def write_stack(data: str, well: str, frames: int, path: Path) -> None:
    """The well's worms crawling for `frames` frames (semiconv.data.moving, seed 0) as a T x H x W TIFF."""
    from semiconv.data.moving import MotionConfig, moving_worms
    from semiconv.data.packed import open_wells

    source = open_wells(data).load(well)
    tifffile.imwrite(path, moving_worms(source.brightfield, source.masks, seed=0, config=MotionConfig(frames=frames)).frames)


def widget_job(stack: Path, model: str, threads: int) -> None:
    """The Segment widget's work on a stack with "track worms" on (napari_semiconv's segment_worker,
    run here to the end, not in a thread): predictions, table and layers, all held until exit."""
    import torch

    from napari_semiconv._segment_jobs import segment_worker
    from semiconv.tracking import TrackingSettings

    torch.set_num_threads(threads)
    image = tifffile.imread(stack)
    planes = list(image.reshape(-1, *image.shape[-2:]))
    job = segment_worker.__wrapped__(model, "cpu", planes, [(stack.stem, len(planes))], None, None,
                                     describe=lambda source, m: (f"{source} [{m.name}]", {"model": m.name}),
                                     tracking=TrackingSettings())
    try:
        while True:
            kind, value = next(job)
            if kind == "error":
                raise RuntimeError(value)
    except StopIteration as done:
        held = done.value  # noqa: F841 - kept alive to the end, as the viewer keeps the results
    print(f"{sum(len(p) for p in held[0])} worm-frames")


def worm_frames(table: Path) -> int:
    with open(table) as handle:
        return sum(1 for _ in handle) - 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="BBBC010-layout folder or packed .npz")
    parser.add_argument("--wells", nargs="+", default=["A11", "B08"])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="bbbc010-brightfield")
    parser.add_argument("--napari", action="store_true", help="also the Segment widget's job on each stack")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--write-stack", type=Path, help=argparse.SUPPRESS)  # the child that makes a sequence
    parser.add_argument("--widget-job", type=Path, help=argparse.SUPPRESS)  # the child that runs the widget's job
    args = parser.parse_args()
    if args.write_stack:
        write_stack(args.data, args.wells[0], args.frames, args.write_stack)
        return
    if args.widget_job:
        widget_job(args.widget_job, args.model, args.threads)
        return
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for name in args.wells:
            paths = {"stack": folder / f"{name}_stack.tif", "one_frame": folder / f"{name}_one_frame.tif"}
            subprocess.run([sys.executable, __file__, "--data", args.data, "--wells", name, "--frames", str(args.frames),
                            "--write-stack", str(paths["stack"])], check=True)
            with tifffile.TiffFile(paths["stack"]) as tif:
                first = tif.pages[0].asarray()
                row = {"frames": len(tif.pages), "shape": list(first.shape)}
            tifffile.imwrite(paths["one_frame"], first[None])
            for label, path in paths.items():
                out = folder / f"out_{name}_{label}"
                command = [sys.executable, "-m", "semiconv", "segment", str(path), "--track", "--out", str(out),
                           "--model", args.model, "--threads", str(args.threads)]
                peak, seconds = peak_of(command)
                row[f"{label}_peak_mib"] = round(peak, 1)
                row[f"{label}_seconds"] = round(seconds, 1)
                row[f"{label}_worm_frames"] = worm_frames(out / f"{path.stem}_worms.csv")
                if args.napari:
                    peak, seconds = peak_of([sys.executable, __file__, "--widget-job", str(path), "--model", args.model,
                                             "--threads", str(args.threads), "--data", args.data])
                    row[f"napari_{label}_peak_mib"] = round(peak, 1)
                    row[f"napari_{label}_seconds"] = round(seconds, 1)
            row["extra_mib_per_worm_frame"] = round((row["stack_peak_mib"] - row["one_frame_peak_mib"])
                                                    / max(row["stack_worm_frames"] - row["one_frame_worm_frames"], 1), 3)
            results[name] = row
            print(name, json.dumps(row), flush=True)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # carried into each child's figure: keep it small
    text = json.dumps({"threads": args.threads, "model": args.model, "measuring_process_peak_mib": round(own, 1),
                       "wells": results}, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
