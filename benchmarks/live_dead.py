"""Live/dead call on the BBBC010 training half, checked against the plate layout
(columns 01-12 ampicillin-cured: alive; 13-24 untreated: dead).

    python benchmarks/live_dead.py --data ../shared/data/bbbc010 [--model NAME]   # --model: predicted masks

Reports per-worm accuracy of the call, and the Z'-factor of the per-well fraction dead
between the two halves of the plate. Without --model the ground-truth masks are measured.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from semiconv.data import Bbbc010Folder
from semiconv.measure import measure_worms, z_prime


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="BBBC010-layout folder (e.g. ../shared/data/bbbc010)")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    folder = Bbbc010Folder(args.data)
    model = None
    if args.model:
        import semiconv

        model = semiconv.load_model(args.model, device="cpu")
    correct = total = 0
    fraction = {"alive": [], "dead": []}
    by_rule = {"fluorescence": [0, 0], "shape only": [0, 0]}
    for name in folder.wells:
        well = folder.load(name)
        expected_dead = int(name[1:]) >= 13
        masks = model.predict(well.brightfield, dense=False).masks if model else well.masks
        rows = measure_worms(masks, fluorescence=well.fluorescence)
        shape_rows = measure_worms(masks)
        calls = np.array([r["dead"] for r in rows])
        correct += int((calls == expected_dead).sum())
        total += len(calls)
        by_rule["fluorescence"][0] += int((calls == expected_dead).sum())
        by_rule["fluorescence"][1] += len(calls)
        shape_calls = np.array([r["dead"] for r in shape_rows])
        by_rule["shape only"][0] += int((shape_calls == expected_dead).sum())
        by_rule["shape only"][1] += len(shape_calls)
        fraction["dead" if expected_dead else "alive"].append(calls.mean() if len(calls) else np.nan)
    result = {
        "masks": f"predicted by {args.model}" if model else "ground truth",
        "worms": total,
        "per_worm_accuracy": round(correct / total, 4),
        "per_worm_accuracy_shape_only_rule": round(by_rule["shape only"][0] / by_rule["shape only"][1], 4),
        "wells_alive_half": len(fraction["alive"]), "wells_dead_half": len(fraction["dead"]),
        "mean_fraction_dead_alive_half": round(float(np.nanmean(fraction["alive"])), 4),
        "mean_fraction_dead_dead_half": round(float(np.nanmean(fraction["dead"])), 4),
        "z_prime_fraction_dead": round(z_prime(np.array(fraction["dead"]), np.array(fraction["alive"])), 4),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
