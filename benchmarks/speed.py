"""CPU/GPU inference speed on one 520 x 696 BBBC010 image, against torchvision's stock
maskrcnn_resnet50_fpn (random weights, default transform) on the same image in the same run.

    python benchmarks/speed.py [--model bbbc010-brightfield] [--threads 2] [--repeats 5] [--device cpu]

Prints JSON: seconds per image (median) for our full predict (all outputs: masks, labels,
Psi, displacement) in fp32 and, where the CPU computes bf16 natively, under bf16 autocast
(`load_model(..., precision="bf16")`), and for the stock model, their ratios, and peak resident memory of a
separate process doing one prediction with our model.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch


def sample_image() -> np.ndarray:
    from semiconv.data import Bbbc010Folder
    from semiconv.resources import sample_data_dir

    return Bbbc010Folder(sample_data_dir() / "bbbc010").load("C01").brightfield


def time_calls(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_memory_mb(model: str, threads: int, device: str) -> float:
    code = (
        "import resource, torch, sys; sys.path.insert(0, 'benchmarks'); torch.set_num_threads(%d);"
        "from speed import sample_image; import semiconv;"
        "m = semiconv.load_model(%r, device=%r); m.predict(sample_image());"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)" % (threads, model, device)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="bbbc010-brightfield")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    import semiconv
    from semiconv.inference import resolve_precision

    image = sample_image()
    model = semiconv.load_model(args.model, device=args.device)
    ours = time_calls(lambda: model.predict(image), args.repeats)
    pred = model.predict(image)
    bf16 = None
    if resolve_precision("auto", model.device) == "bf16":  # the same model under bf16 autocast, same run
        fast = semiconv.load_model(args.model, device=args.device, precision="bf16")
        bf16 = time_calls(lambda: fast.predict(image), args.repeats)
    stock = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval().to(args.device)
    rgb = torch.from_numpy((image / image.max()).astype(np.float32))[None].repeat(3, 1, 1).to(args.device)

    def run_stock():
        with torch.no_grad():
            stock([rgb])
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()

    theirs = time_calls(run_stock, args.repeats)
    result = {
        "model": args.model, "device": args.device, "threads": args.threads, "image": list(image.shape), "worms_found": len(pred),
        "ours_s_per_image": round(ours, 3), "stock_maskrcnn_resnet50_fpn_s_per_image": round(theirs, 3),
        "ratio_ours_over_stock": round(ours / theirs, 3),
        "ours_images_per_s": round(1 / ours, 2),
    }
    if bf16 is not None:
        result.update(ours_bf16_s_per_image=round(bf16, 3), ratio_bf16_over_fp32=round(bf16 / ours, 3),
                      ratio_bf16_over_stock=round(bf16 / theirs, 3))
    if args.device == "cpu":
        result["peak_rss_mb_one_prediction_process"] = round(peak_memory_mb(args.model, args.threads, args.device), 1)
    result["this_process_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
