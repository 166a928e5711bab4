"""Choose the mask clean-up after NMS (semiconv.mask_cleanup) for a trained model on the fixed
validation wells (a step of benchmarks/release/reproduce_bundled_model.py): `foreground_growth` (pixels masks grow into foreground no mask covers) and
`keep_largest_piece` (one connected piece per worm). For each candidate the usual threshold
search of training's validation (score, mask, foreground, containment thresholds) runs again,
and the table shows what each reaches. With --write the best variant and its thresholds go into
the model folder's config.json (atomically; weights untouched); bundle the folder afterwards.

    python benchmarks/release/choose_cleanup.py runs/bf_joint_noblur2 [--variants 0:off,3:off,3:on] [--write]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from semiconv.calibration import choose_thresholds
from semiconv.config import save_json
from semiconv.data.bbbc010 import VALIDATION_WELLS, Bbbc010Folder
from semiconv.inference import load_model
from semiconv.training.samples import samples_from_bbbc010

KEYS = ("AP", "AP50", "AP75", "score@0.5", "score@0.8", "score@0.9", "avAP", "overlap_recall@0.5")
CHOSEN = ("score_threshold", "mask_threshold", "foreground_threshold", "mask_containment_threshold", "foreground_growth",
          "keep_largest_piece")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", help="a model folder (not a bundled name: --write edits it)")
    parser.add_argument("--data", required=True, help="BBBC010-layout folder (e.g. ../shared/data/bbbc010)")
    parser.add_argument("--variants", default="0:off,3:off,3:on", help="growth pixels:largest piece on/off, comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model, device="cpu")
    variants = [(int(v.split(":")[0]), v.split(":")[1] == "on") for v in args.variants.split(",")]
    if not model.config.foreground_head and any(steps for steps, _ in variants):
        raise SystemExit(f"{args.model}: no foreground head, nothing to grow into (use growth 0)")
    samples = samples_from_bbbc010(Bbbc010Folder(args.data), list(VALIDATION_WELLS), model.config)
    print("| growth (px) | largest piece | score / mask / fg / containment thresholds | " + " | ".join(KEYS) + " |")
    rows = []
    for steps, largest in variants:
        config = dataclasses.replace(model.config, foreground_growth=steps, keep_largest_piece=largest)
        threshold, metrics = choose_thresholds(model.network, config, samples, model.device)
        config = config.with_thresholds(metrics)
        rows.append((metrics, config))
        print(f"| {steps} | {'on' if largest else 'off'} | {threshold} / {metrics['mask_threshold']} / {metrics['foreground_threshold']} / "
              f"{metrics['mask_containment_threshold']} | " + " | ".join(f"{metrics[k]:.3f}" for k in KEYS) + " |", flush=True)
    metrics, config = max(rows, key=lambda r: r[0]["avAP"])
    print(json.dumps({"best": {k: getattr(config, k) for k in CHOSEN}, "avAP": round(metrics["avAP"], 4)}))
    if args.write:
        path = Path(args.model) / "config.json"
        payload = json.loads(path.read_text())
        payload["model"] = config.to_dict()
        payload["validation"] = {**metrics, "chosen_by": "benchmarks/release/choose_cleanup.py"}
        save_json(path, payload)  # atomic
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
