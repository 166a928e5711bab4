"""Batched inference throughput on a GPU, all maps included, on 520 x 696 BBBC010 wells.

    python benchmarks/gpu_speed.py --model MODEL_FOLDER --data data/bbbc010-train.npz [--batches 1 8 16] [--repeats 5]

Two figures per batch size, each the median of `repeats` timed passes after a warm-up:
- network: the network on a batch of wells (one forward pass, bf16 autocast and fp32), with
  every map made on the GPU and copied to the host (mask probabilities at native size, the
  foreground, the dense embedding Psi and the seeds), images per second;
- predict: `SemiConvModel.predict` image by image (network + the CPU post-processing: thresholds,
  NMS, clean-up, displacement), images per second.
Prints JSON with the card's name.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def synchronize():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def median_seconds(fn, repeats: int) -> float:
    fn()
    synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda", help="cuda (cpu only to try the script)")
    args = parser.parse_args()

    from semiconv.data.packed import PackedWells
    from semiconv.inference import load_model
    from semiconv.network_outputs import dense_embedding

    model = load_model(args.model, device=args.device)
    source = PackedWells(args.data)
    wells = [source.load(w).brightfield for w in source.wells[: max(args.batches)]]
    inputs = [torch.from_numpy(model.network_input(w)[0]).to(model.device) for w in wells]
    model.network.roi_heads.score_thresh = model.config.score_threshold
    result = {"card": torch.cuda.get_device_name(0) if model.device.type == "cuda" else "cpu", "torch": torch.__version__, "image": list(wells[0].shape),
              "model": args.model, "score_threshold": model.config.score_threshold, "network_images_per_s": {},
              "network_bf16_images_per_s": {}}

    def network_pass(batch, bf16):
        with torch.no_grad(), torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
            outs = model.network(batch)
        for x, out in zip(batch, outs, strict=True):
            h, w = x.shape[1:]
            out["masks"].float().cpu()
            out["foreground"].float().cpu()
            out["seed_positions"].float().cpu()
            dense_embedding(out["embedding_stride4"], model.config, h, w)

    for b in args.batches:
        batch = inputs[:b]
        result["network_images_per_s"][b] = round(b / median_seconds(lambda batch=batch: network_pass(batch, False), args.repeats), 1)
        result["network_bf16_images_per_s"][b] = round(b / median_seconds(lambda batch=batch: network_pass(batch, True), args.repeats), 1)
    result["predict_images_per_s"] = round(len(wells) / median_seconds(lambda: [model.predict(w) for w in wells], 1), 1)
    result["worms_per_image"] = round(sum(len(model.predict(w)) for w in wells) / len(wells), 1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
