"""Average the weights of several validated steps of one run, and score the average on the held-out fold.

    python benchmarks/average_checkpoints.py RUN/validated/step-030000 RUN/validated/step-032500 ...
        --data data/bbbc010-train.npz --fold 0 --out runs/averaged/NAME [--threads 2]

Weight averaging along one run's trajectory (SWA, Izmailov et al. 2018; "model soups", Wortsman
et al. 2022) can find a flatter point than any single step, at no training cost. Every floating
point tensor of the folders' weights is averaged in float32 (the model has GroupNorm only, so
there are no batch statistics to recompute); the average is built with the last folder's model
config, its thresholds chosen on the fold's held-out wells exactly as the training loop chooses a
step's (`semiconv.calibration.choose_thresholds`), and written as a model folder (float32) that
`benchmarks/milestone.py` and `benchmarks/release/bundle_model.py` take. Prints the held-out
figures the loop logs for a step, so the average compares with the run's rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_validate import KEYS  # noqa: E402


def average_states(states: list[dict]) -> dict:
    """The element-wise mean of state dicts with the same keys and shapes (floating tensors, in
    float32); other tensors (integer buffers) are taken from the first."""
    import torch

    from semiconv.model_folders import mismatched_weights

    for state in states[1:]:
        if any(mismatched_weights(states[0], state)):
            raise ValueError("the folders' weights have different tensors: not steps of one model")
    out = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            out[key] = torch.stack([s[key].float() for s in states]).mean(0)
        else:
            out[key] = first.clone()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", help="model folders of one run (validated steps)")
    parser.add_argument("--data", required=True, help="BBBC010-layout folder or packed .npz")
    parser.add_argument("--fold", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="model folder to write (must not exist)")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()

    import torch

    from semiconv.calibration import choose_thresholds
    from semiconv.data.folds import fold_split
    from semiconv.data.packed import open_wells
    from semiconv.model_folders import load_state_checked, read_model_folder, save_model_folder
    from semiconv.network.build import build_model
    from semiconv.training.samples import samples_from_bbbc010

    if args.out.exists():
        parser.error(f"{args.out} exists already")
    if args.threads:
        torch.set_num_threads(args.threads)
    read = [read_model_folder(folder) for folder in args.folders]
    config = read[-1][0]
    network = build_model(config)
    load_state_checked(network, average_states([state for _, state, _ in read]), "the averaged weights")
    source = open_wells(args.data)
    _, held_wells = fold_split(args.fold, source.wells)
    start = time.perf_counter()
    _, metrics = choose_thresholds(network, config, samples_from_bbbc010(source, held_wells, config), torch.device("cpu"))
    steps = [meta.get("step") for _, _, meta in read]
    meta = {"averaged_from": [str(f) for f in args.folders], "steps": steps, "fold": args.fold,
            "data": read[-1][2].get("data", {}), "validation": metrics}
    save_model_folder(args.out, network, config.with_thresholds(metrics), meta)
    print(json.dumps({"steps": steps, **{k: round(metrics[k], 3) for k in KEYS},
                      "thresholds": [metrics[k] for k in ("score_threshold", "mask_threshold", "foreground_threshold",
                                                          "mask_containment_threshold")],
                      "seconds": round(time.perf_counter() - start, 1), "out": str(args.out)}))


if __name__ == "__main__":
    main()
