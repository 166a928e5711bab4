"""How many user actions fix every error of a model on a well, with the Correct widget's edits.

    python benchmarks/correction_actions.py --data sample_data/bbbc010 [--wells C01 B20]
        [--model bbbc010-brightfield] [--threads 2] [--out actions.json]

A scripted user, guided by the ground truth, corrects each well's prediction with the operations
the Correct widget runs (semiconv.editing: delete_worm, merge_worms, draw_worm), until no error of
the error census is left at IoU 0.5 (semiconv.metrics.error_census): a fragment of a worm found
twice is merged into the worm's match (click, click, merge key: 3 actions); a rough mask of a worm
nobody matches is redrawn along it (click, the path's clicks, apply key); a detection off any
worm is deleted (click, delete key: 2); a prediction holding two worms is redrawn along the one it
matches (click, the path's clicks, apply key) and the other added; a missed worm is added (the
path's clicks, apply key). A path is the true worm's centre line (semiconv.measure.centre_line)
simplified to within 2 px (skimage approximate_polygon): its vertices are the clicks; width: the
true worm's mean width. Reported per well: the census before, the actions and clicks, the
matching score TP/(TP+FP+FN) at IoU 0.5 before and after.

The same wells also measure the review queue (semiconv.review.worm_doubts): where the wrong
predictions (unmatched, or holding two worms) stand in the queue ordered by doubt, and the
probability that a wrong prediction is doubted more than a right one (AUC), and how many wrong
predictions the first fifth of each well's queue holds.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from semiconv.data.packed import open_wells
from semiconv.editing import EditedPlane, delete_worm, draw_worm, merge_worms
from semiconv.inference import load_model
from semiconv.measure import centre_line
from semiconv.metrics import error_census, image_matching, mask_overlaps, summary_from_matching
from semiconv.result_files import worm_rows
from semiconv.review import worm_doubts


def path_clicks(mask: np.ndarray, tolerance: float = 2.0) -> np.ndarray:
    """A path along a worm a user would click: its centre line simplified to within `tolerance` px."""
    from skimage.measure import approximate_polygon

    line = centre_line(mask)
    return approximate_polygon(line, tolerance) if len(line) > 2 else line


def mean_width(mask: np.ndarray) -> float:
    """Area over centre-line length, pixels (at least 2)."""
    return max(float(mask.sum()) / max(len(centre_line(mask)), 1), 2.0)


def score(plane: EditedPlane, truth: np.ndarray) -> float:
    summary = summary_from_matching(image_matching(plane.masks, truth), 1, 0.0)
    return float(summary["score@0.5"]) if "score@0.5" in summary else float("nan")


def wrong_predictions(masks: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Bool per prediction: unmatched at IoU 0.5, or covering half of two true worms."""
    from scipy.optimize import linear_sum_assignment

    from semiconv.metrics import iou_from_overlaps

    inter, pred_area, true_area = mask_overlaps(masks, truth)
    ious = iou_from_overlaps(inter, pred_area, true_area)
    wrong = np.ones(len(masks), bool)
    if ious.size:
        rows, cols = linear_sum_assignment(ious, maximize=True)
        wrong[rows[ious[rows, cols] >= 0.5]] = False
        wrong |= (inter >= 0.5 * np.maximum(true_area[None], 1)).sum(1) >= 2
    return wrong


def correct(plane: EditedPlane, truth: np.ndarray, max_rounds: int = 20) -> tuple[EditedPlane, dict]:
    """Fix the census errors of `plane` against `truth` as the module docstring says; the actions."""
    from scipy.optimize import linear_sum_assignment

    from semiconv.metrics import iou_from_overlaps

    actions = dict.fromkeys(("merge_fragment", "delete_off_worm", "redraw_rough", "redraw_merged", "add_missed", "clicks"), 0)
    for _ in range(max_rounds):
        inter, pred_area, true_area = mask_overlaps(plane.masks, truth)
        ious = iou_from_overlaps(inter, pred_area, true_area)
        rows, cols = linear_sum_assignment(ious, maximize=True) if ious.size else (np.zeros(0, int), np.zeros(0, int))
        good = ious[rows, cols] >= 0.5
        match_of_true = dict(zip(cols[good].tolist(), rows[good].tolist(), strict=True))
        matched = set(match_of_true.values())
        covers = inter >= 0.5 * np.maximum(true_area[None], 1)
        # false positives first: fragments merged into their worm's match, off-worm detections deleted
        fp = [p for p in range(len(plane.ids)) if p not in matched and covers[p].sum() < 2]
        if fp:
            p = fp[0]
            on = [t for t in range(len(truth)) if inter[p, t] >= 0.5 * max(pred_area[p], 1)]
            if on and on[0] in match_of_true:
                plane = merge_worms(plane, int(plane.ids[match_of_true[on[0]]]), int(plane.ids[p]))
                actions["merge_fragment"] += 1
                actions["clicks"] += 3
            elif on:  # a rough mask of a worm nobody matches: redrawn along it
                path = path_clicks(truth[on[0]])
                plane, _ = draw_worm(plane, path, mean_width(truth[on[0]]), int(plane.ids[p]))
                actions["redraw_rough"] += 1
                actions["clicks"] += 1 + len(path) + 1
            else:
                plane = delete_worm(plane, int(plane.ids[p]))
                actions["delete_off_worm"] += 1
                actions["clicks"] += 2
            continue
        missed = [t for t in range(len(truth)) if t not in match_of_true]
        if not missed:
            break
        t = missed[0]
        holder = next((p for p in np.flatnonzero(covers[:, t]) if p in matched or covers[p].sum() >= 2), None)
        if holder is not None:  # a prediction holding this worm and another: redraw it along the other
            other = next((u for u, q in match_of_true.items() if q == holder), None)
            if other is None:
                other = next(u for u in np.flatnonzero(covers[holder]) if u != t)
            path = path_clicks(truth[other])
            plane, _ = draw_worm(plane, path, mean_width(truth[other]), int(plane.ids[holder]))
            actions["redraw_merged"] += 1
            actions["clicks"] += 1 + len(path) + 1
        path = path_clicks(truth[t])
        plane, _ = draw_worm(plane, path, mean_width(truth[t]))
        actions["add_missed"] += 1
        actions["clicks"] += len(path) + 1
    return plane, actions


def auc(wrong: np.ndarray, doubt: np.ndarray) -> float:
    """P(doubt of a wrong prediction > doubt of a right one), ties counting half."""
    bad, good = doubt[wrong], doubt[~wrong]
    if not len(bad) or not len(good):
        return float("nan")
    greater = (bad[:, None] > good[None]).mean()
    ties = (bad[:, None] == good[None]).mean()
    return float(greater + 0.5 * ties)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="BBBC010-layout folder or packed .npz")
    parser.add_argument("--wells", nargs="+", default=["C01", "B20"])
    parser.add_argument("--model", default="bbbc010-brightfield")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    source = open_wells(args.data)
    model = load_model(args.model, device="cpu")
    results, all_wrong, all_doubt, ranks, first_fifth = [], [], [], [], 0
    for name in args.wells:
        well = source.load(name)
        pred = model.predict(well.brightfield, dense=False)
        truth = np.asarray(well.masks, bool)
        plane = EditedPlane(pred.masks, np.arange(1, len(pred) + 1), np.asarray(pred.scores, float),
                            np.zeros(len(pred), bool), [], np.asarray(pred.seeds, float))
        census = error_census([(pred.masks, pred.scores)], [truth])
        rows = worm_rows(pred.masks, pred.scores, pred.seeds)
        doubt, _ = worm_doubts(rows, pred.masks)
        wrong = wrong_predictions(pred.masks, truth)
        order = np.argsort(-doubt, kind="stable")
        positions = [int(np.flatnonzero(order == i)[0]) + 1 for i in np.flatnonzero(wrong)]
        ranks += positions
        first_fifth += sum(r <= np.ceil(0.2 * len(pred)) for r in positions)
        all_wrong.append(wrong)
        all_doubt.append(doubt)
        fixed, actions = correct(plane, truth)
        after = error_census([(fixed.masks, np.ones(len(fixed.ids)))], [truth])
        entry = {"well": name, "true": int(len(truth)), "predicted": int(len(pred)),
                 "census_before": {k: census[k] for k in ("missed", "merged", "rough", "not_found", "false_positives",
                                                          "fragment", "merge", "off_worm")},
                 "actions": actions, "edits": int(sum(v for k, v in actions.items() if k != "clicks")),
                 "score@0.5_before": round(score(plane, truth), 3), "score@0.5_after": round(score(fixed, truth), 3),
                 "errors_left": int(after["missed"] + after["false_positives"]),
                 "wrong_predictions": int(wrong.sum()), "wrong_queue_positions": positions}
        results.append(entry)
        print(json.dumps(entry), flush=True)
    wrong, doubt = np.concatenate(all_wrong), np.concatenate(all_doubt)
    summary = {"wells": args.wells, "model": args.model,
               "edits": int(sum(r["edits"] for r in results)), "clicks": int(sum(r["actions"]["clicks"] for r in results)),
               "errors_left": int(sum(r["errors_left"] for r in results)),
               "actions": {k: int(sum(r["actions"][k] for r in results)) for k in results[0]["actions"]},
               "review_auc": round(auc(wrong, doubt), 3), "wrong_predictions": int(wrong.sum()),
               "wrong_in_first_fifth_of_queue": int(first_fifth), "predictions": int(len(wrong))}
    print(json.dumps(summary, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"summary": summary, "wells": results}, f, indent=1)


if __name__ == "__main__":
    main()
