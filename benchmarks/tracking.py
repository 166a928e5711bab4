"""Identities across frames: moving real worms, segmented frame by frame, linked or not.

    python benchmarks/tracking.py --data data/bbbc010-train.npz [--model bbbc010-brightfield]
        [--wells B17 ...] [--frames 8] [--seeds 0] [--max-gap 2 [5 ...]] [--no-join-fragments] [--threads 2] [--tta] [--out tracking.json]

Each well (default: the bundled model's 10 validation wells, never trained on) becomes a sequence
of its own annotated worms crawling over its background (semiconv.data.moving; some worms never
move, some stop). Each sequence is segmented twice: every frame on its own (`model.predict`), and
as `semiconv segment --track` does, each frame with the previous frame's worm boxes carried into
it and the pieces of one worm of the frame before joined (semiconv.tracking.tracked_frame).
Identities: (a) per_frame: the labels of the frames segmented on their own (what `semiconv segment`
gave before tracking); (b) linked_alone: those frames linked by semiconv.tracking.link_frames;
(c) tracked: the carried segmentation linked (the product); (d) tracked_true_identities: the same
detections with the identities a perfect linker would give them (semiconv.track_metrics.true_identities:
the bound of any linking, so that (d) - (c) is what the linking loses and 1 - (d) the detector's
share). Reported per well and pooled:
usual_label (share of the frames where a worm is found in which it carries its most frequent identity), found, IDF1, MOTA, identity switches
(motmetrics; semiconv.track_metrics), the crossings in the sequence, the time of the carried
segmentation against the plain one (carried_boxes_time_ratio), of segmentation vs linking
(link_frames + the centre lines of semiconv.tracking.track_rows), and the dead-by-movement call
against the frames each worm truly stops from.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
import torch

from semiconv.data.bbbc010 import VALIDATION_WELLS
from semiconv.data.moving import MotionConfig, moving_worms
from semiconv.data.packed import open_wells
from semiconv.inference import load_model
from semiconv.result_files import prediction_rows
from semiconv.track_metrics import frame_iou, frame_matches, tracking_scores, true_identities
from semiconv.tracking import TrackingSettings, link_frames, track_rows, tracked_frame


def dead_call_accuracy(seq, pred_stacks, rows_by_frame, settings: TrackingSettings) -> tuple[int, int]:
    """(correct, total) dead-by-movement calls over matched (worm, frame) pairs. Truth: worm n is
    dead from frame stops[n] when it then stays still for >= still_frames frame steps."""
    T = len(seq.frames)
    correct = total = 0
    for t in range(T):
        iou = frame_iou(seq.masks[t], pred_stacks[t])
        for n, c in frame_matches(iou):
            stop = seq.stops[n]
            truth = (T - 1 - stop) >= settings.still_frames and t >= stop
            correct += int(rows_by_frame[t][c]["dead_by_movement"] == truth)
            total += 1
    return correct, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="BBBC010-layout folder or packed .npz")
    parser.add_argument("--model", default="bbbc010-brightfield")
    parser.add_argument("--wells", nargs="+", default=list(VALIDATION_WELLS))
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--max-gap", type=int, nargs="+", default=[TrackingSettings.max_gap],
                        help="frames a worm may be missing (TrackingSettings.max_gap); several: each is scored "
                             "on the same segmentations ('tracked' is the first, 'tracked_gap<k>' the others)")
    parser.add_argument("--no-join-fragments", action="store_true",
                        help="tracking without joining the pieces of one worm (TrackingSettings.join_fragments off)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tta", action="store_true", help="segment with test-time augmentation (semiconv.tta), as `segment --tta`")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import laptrack  # noqa: F401  (imported once per process: not counted as linking time)

    source = open_wells(args.data)
    model = load_model(args.model, device="cpu", tta=args.tta)
    settings = TrackingSettings(max_gap=args.max_gap[0], join_fragments=not args.no_join_fragments)
    results, pooled = [], {"segment_s": 0.0, "alone_segment_s": 0.0, "link_s": 0.0, "dead_ok": 0, "dead_n": 0}
    for well_name in args.wells:
        well = source.load(well_name)
        for seed in args.seeds:
            seq = moving_worms(well.brightfield, well.masks, seed=seed, config=MotionConfig(frames=args.frames))
            true_stacks = list(seq.masks)
            true_ids = [np.arange(1, seq.masks.shape[1] + 1)] * len(true_stacks)
            start = time.perf_counter()
            alone = [model.predict(frame, dense=False) for frame in seq.frames]
            alone_s = time.perf_counter() - start
            start = time.perf_counter()
            preds, carried = [], None  # what `semiconv segment --track` does: each frame with the previous frame's
            for frame in seq.frames:      # boxes, pieces of one worm of the frame before joined
                pred, carried = tracked_frame(model.predict(frame, dense=False, carried_boxes=carried),
                                              preds[-1].masks if preds else None, settings)
                preds.append(pred)
            segment_s = time.perf_counter() - start
            stacks = [p.masks for p in preds]
            alone_stacks = [p.masks for p in alone]
            rows = prediction_rows(preds)
            start = time.perf_counter()
            ids = link_frames(stacks, settings)
            tracked = track_rows(rows, ids, settings=settings)
            link_s = time.perf_counter() - start
            by_frame = [[r for r in tracked if r["frame"] == t] for t in range(len(preds))]
            for frame_rows in by_frame:
                frame_rows.sort(key=lambda r: r["label"])
            per_frame = [np.arange(1, len(s) + 1) for s in alone_stacks]
            ok, n = dead_call_accuracy(seq, stacks, by_frame, settings)
            others = {f"tracked_gap{k}": tracking_scores(true_stacks, true_ids, stacks,
                                                         link_frames(stacks, replace(settings, max_gap=k)))
                      for k in args.max_gap[1:]}
            entry = {"well": well_name, "seed": seed, "worms": int(seq.masks.shape[1]),
                     "crossings": seq.crossings(), "segment_s": round(segment_s, 2), "alone_segment_s": round(alone_s, 2),
                     "link_s": round(link_s, 3),
                     "per_frame": tracking_scores(true_stacks, true_ids, alone_stacks, per_frame),
                     "linked_alone": tracking_scores(true_stacks, true_ids, alone_stacks, link_frames(alone_stacks, settings)),
                     "tracked": tracking_scores(true_stacks, true_ids, stacks, ids),
                     "tracked_true_identities": tracking_scores(true_stacks, true_ids, stacks,
                                                                true_identities(true_stacks, true_ids, stacks)),
                     **others, "dead_by_movement_accuracy": round(ok / n, 3) if n else None}
            results.append(entry)
            pooled["segment_s"] += segment_s
            pooled["alone_segment_s"] += alone_s
            pooled["link_s"] += link_s
            pooled["dead_ok"] += ok
            pooled["dead_n"] += n
            print(json.dumps(entry), flush=True)
    summary = {}
    for kind in ["per_frame", "linked_alone", "tracked", "tracked_true_identities"] + [f"tracked_gap{k}" for k in args.max_gap[1:]]:
        matched = sum(r[kind]["matched"] for r in results)
        summary[kind] = {
            "usual_label": round(sum(r[kind]["usual_label"] * r[kind]["matched"] for r in results) / matched, 3),
            "found": round(matched / sum(r[kind]["true"] for r in results), 3),
            "idf1_mean": round(float(np.mean([r[kind]["idf1"] for r in results])), 3),
            "mota_mean": round(float(np.mean([r[kind]["mota"] for r in results])), 3),
            "id_switches": int(sum(r[kind]["id_switches"] for r in results)),
        }
    summary.update(sequences=len(results), frames=args.frames, crossings=int(sum(r["crossings"] for r in results)),
                   link_share_of_segmentation=round(pooled["link_s"] / pooled["segment_s"], 4),
                   carried_boxes_time_ratio=round(pooled["segment_s"] / pooled["alone_segment_s"], 3),
                   segment_s_per_frame=round(pooled["segment_s"] / (len(results) * args.frames), 3),
                   dead_by_movement_accuracy=round(pooled["dead_ok"] / pooled["dead_n"], 3) if pooled["dead_n"] else None,
                   settings=settings.__dict__, model=args.model, tta=args.tta, threads=args.threads)
    print(json.dumps(summary, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"summary": summary, "sequences": results}, f, indent=1)


if __name__ == "__main__":
    main()
