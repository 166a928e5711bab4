"""CPU/GPU inference speed on one 520 x 696 BBBC010 image, against torchvision's stock
maskrcnn_resnet50_fpn (random weights, default transform) on the same image in the same run.

    python benchmarks/speed.py [--model bbbc010-brightfield [OTHER ...]] [--threads 2] [--repeats 5] [--device cpu]

Prints JSON: seconds per image (median) for our full predict (all outputs: masks, labels,
Psi, displacement) in fp32 and, where the CPU computes bf16 natively, under bf16 autocast
(`load_model(..., precision="bf16")`), and for the stock model, their ratios, and peak resident memory of a
separate process doing one prediction with our model. The calls are timed in rounds, one call
of each contender per round, so that a host whose speed drifts (shared CPUs) moves all of them
alike; each ratio is the median of the per-round ratios, with its range over the rounds. Further
models after the first are timed in the same rounds and reported under "others" (their time over
stock and over the first model's).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch


def sample_image() -> np.ndarray:
    from semiconv.data import Bbbc010Folder
    from semiconv.resources import sample_data_dir

    return Bbbc010Folder(sample_data_dir() / "bbbc010").load("C01").brightfield


def time_rounds(calls: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each named zero-argument callable, `repeats` rounds of one call each
    (after one warm-up round), interleaved: {name: [seconds per round]}."""
    for fn in calls.values():
        fn()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def ratio(times: dict[str, list[float]], top: str, bottom: str) -> tuple[float, list[float]]:
    """Median over rounds of top's time over bottom's, and the [lowest, highest] such ratio."""
    per_round = [a / b for a, b in zip(times[top], times[bottom], strict=True)]
    return round(statistics.median(per_round), 3), [round(min(per_round), 3), round(max(per_round), 3)]


def own_peak_mb() -> float:
    """This process's peak resident memory, MiB: Linux's VmHWM (its own address space only;
    ru_maxrss would carry the parent's resident size into a child across exec), else ru_maxrss."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory_mb(model: str, threads: int, device: str) -> float:
    """Peak resident MiB of a fresh process that loads `model` and segments the sample image once."""
    code = (
        "import sys, torch; sys.path.insert(0, %r); torch.set_num_threads(%d);"
        "from speed import own_peak_mb, sample_image; import semiconv;"
        "m = semiconv.load_model(%r, device=%r); m.predict(sample_image());"
        "print(own_peak_mb())" % (str(Path(__file__).resolve().parent), threads, model, device)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", nargs="+", default=["bbbc010-brightfield"],
                        help="model name(s) or folder(s); the first is the one reported in full")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    import semiconv
    from semiconv.inference import resolve_precision

    image = sample_image()
    models = {name: semiconv.load_model(name, device=args.device) for name in args.model}
    main_name = args.model[0]
    first = f"model:{main_name}"
    calls = {f"model:{name}": (lambda m=m: m.predict(image)) for name, m in models.items()}
    if resolve_precision("auto", models[main_name].device) == "bf16":  # the first model under bf16 autocast
        fast = semiconv.load_model(main_name, device=args.device, precision="bf16")
        calls["bf16"] = lambda: fast.predict(image)
    stock = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval().to(args.device)
    rgb = torch.from_numpy((image / image.max()).astype(np.float32))[None].repeat(3, 1, 1).to(args.device)

    def run_stock():
        with torch.no_grad():
            stock([rgb])
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()

    calls["stock"] = run_stock
    times = time_rounds(calls, args.repeats)
    median = {name: statistics.median(t) for name, t in times.items()}
    ours, (over_stock, over_stock_range) = median[first], ratio(times, first, "stock")
    result = {
        "model": main_name, "device": args.device, "threads": args.threads, "image": list(image.shape),
        "worms_found": len(models[main_name].predict(image)), "rounds": args.repeats,
        "ours_s_per_image": round(ours, 3), "stock_maskrcnn_resnet50_fpn_s_per_image": round(median["stock"], 3),
        "ratio_ours_over_stock": over_stock, "ratio_ours_over_stock_range": over_stock_range,
        "ours_images_per_s": round(1 / ours, 2),
    }
    if "bf16" in times:
        result.update(ours_bf16_s_per_image=round(median["bf16"], 3),
                      ratio_bf16_over_fp32=ratio(times, "bf16", first)[0],
                      ratio_bf16_over_stock=ratio(times, "bf16", "stock")[0])
    others = []
    for name in args.model[1:]:
        over_first, over_first_range = ratio(times, f"model:{name}", first)
        others.append({"model": name, "s_per_image": round(median[f"model:{name}"], 3),
                       "ratio_over_stock": ratio(times, f"model:{name}", "stock")[0],
                       "ratio_over_first": over_first, "ratio_over_first_range": over_first_range})
    if others:
        result["others"] = others
    if args.device == "cpu":
        result["peak_rss_mb_one_prediction_process"] = round(peak_memory_mb(main_name, args.threads, args.device), 1)
    result["this_process_peak_rss_mb"] = round(own_peak_mb(), 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
