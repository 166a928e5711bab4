"""What bf16 autocast and channels-last give plain ResNet-18 training on this CPU: the ceiling for
the convolutions of a training step (benchmarks/training_speed.py times the whole step).

    python benchmarks/conv_arithmetic.py [--threads 2] [--rounds 10] [--batch 4] [--size 320]

torchvision's resnet18 (3 input channels, BatchNorm, 1000 classes, random weights), forward and
backward of a batch of random images; the arithmetic variants take turns round by round in one
process (freed memory kept, semiconv.allocator, for all alike) and the median seconds after one
warm-up round are reported with the ratio to fp32.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

from semiconv.allocator import keep_freed_memory
from semiconv.precision import bf16_supported

VARIANTS = {"fp32": (False, False), "bf16": (True, False), "bf16 + channels-last": (True, True)}


def forward_backward(model: torch.nn.Module, images: torch.Tensor, bf16: bool, channels_last: bool) -> float:
    """Seconds for one forward and backward pass of `images` (B x 3 x H x W)."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    images = images.contiguous(memory_format=layout)
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model(images)
    out.float().sum().backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=320)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    if not bf16_supported(torch.device("cpu")):
        print("note: this CPU has no native bf16 (AVX-512 BF16 / AMX): bf16 is emulated")
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    images = torch.randn(args.batch, 3, args.size, args.size)
    times = {name: [] for name in VARIANTS}
    for _ in range(args.rounds + 1):
        for name, (bf16, channels_last) in VARIANTS.items():
            times[name].append(forward_backward(model, images, bf16, channels_last))
    base = statistics.median(times["fp32"][1:])
    print(f"| arithmetic | s per forward + backward ({args.batch} x 3 x {args.size} x {args.size}) | x fp32 |")
    print("|---|---|---|")
    for name, seconds in times.items():
        median = statistics.median(seconds[1:])
        print(f"| {name} | {median:.3f} | {base / median:.2f} |")


if __name__ == "__main__":
    main()
