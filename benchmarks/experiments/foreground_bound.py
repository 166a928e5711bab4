"""How much of the mask error is the border? Cut a model's instance masks with (a) the true
foreground (union of the true masks: an upper bound), (b) the model's own foreground head,
(c) nothing, and score each on the validation wells (same NMS, containment suppression and
mask clean-up as the model; growth goes into the region the masks were cut by). Also prints
the foreground head's pixel IoU with the true foreground.

    python benchmarks/experiments/foreground_bound.py [--model bbbc010-brightfield] --data ../shared/data/bbbc010
"""

from __future__ import annotations

import argparse
import json

from semiconv import load_model
from semiconv.calibration import best_score_threshold
from semiconv.data.bbbc010 import VALIDATION_WELLS, Bbbc010Folder
from semiconv.mask_cleanup import clean_masks
from semiconv.postprocess import nms_order

KEYS = ("AP", "AP50", "AP75", "score@0.5", "score@0.8", "score@0.9", "avAP")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="bbbc010-brightfield")
    parser.add_argument("--data", required=True, help="BBBC010-layout folder (e.g. ../shared/data/bbbc010)")
    args = parser.parse_args()
    model = load_model(args.model, device="cpu")
    folder = Bbbc010Folder(args.data)
    rows = {}
    truths = []
    outputs = []
    for name in VALIDATION_WELLS:
        well = folder.load(name)
        x, _ = model.network_input(well.brightfield)
        tile = model.raw_outputs(x, min_score=0.05, dense=False).tiles[0]  # 520 x 696: one tile
        outputs.append((tile.mask_probability, tile.scores, tile.foreground, well.masks.any(0)))
        truths.append(well.masks)
    cuts = {"none": lambda fg, true: None, "true foreground (bound)": lambda fg, true: true}
    if model.config.foreground_head:
        for threshold in sorted({0.5, model.config.foreground_threshold}):
            ious = [((fg >= threshold) & true).sum() / ((fg >= threshold) | true).sum() for _, _, fg, true in outputs]
            print(f"foreground head at {threshold}: mean pixel IoU with the true foreground {sum(ious) / len(ious):.3f}")
        cuts["foreground head"] = lambda fg, true: fg >= model.config.foreground_threshold
    for label, cut in cuts.items():
        best = None
        for mask_threshold in (0.2, 0.3, 0.4, 0.5):
            preds, regions = [], []
            for probs, scores, fg, true in outputs:
                masks = probs >= mask_threshold
                region = cut(fg, true)
                if region is not None:
                    masks &= region[None]
                keep = nms_order(masks, scores, model.config.mask_nms_threshold, model.config.mask_containment_threshold,
                                 model.config.min_mask_area_px)
                preds.append((masks[keep], scores[keep]))
                regions.append(region)

            def finish(i, masks, regions=regions):
                return clean_masks(masks, regions[i], model.config.foreground_growth, model.config.keep_largest_piece)

            _, metrics = best_score_threshold(preds, truths, finish=finish)
            if best is None or metrics["avAP"] > best["avAP"]:
                best = {**metrics, "mask_threshold": mask_threshold}
        rows[label] = best
        print(f"| {label} | {best['mask_threshold']} | " + " | ".join(f"{best[k]:.3f}" for k in KEYS) + " |", flush=True)
    print(json.dumps({k: {m: round(v[m], 3) for m in KEYS} for k, v in rows.items()}))


if __name__ == "__main__":
    main()
