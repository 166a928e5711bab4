"""How well identities are kept, against true per-worm masks with known identities.

Each frame's true worms are matched one to one to the predicted worms at mask IoU >= 0.5
(Hungarian assignment on IoU; overlapping masks compared whole). From those matches:

* usual_label: over all true worms, the share of the frames where a worm is found in which it
  carries its most frequent predicted identity (1.0: no worm ever changes label);
* found: the share of (worm, frame) pairs matched;
* IDF1, MOTA, identity switches: the CLEAR-MOT and identity metrics of motmetrics (Milan et al.
  2016; Ristani et al. 2016) on the same IoU distances (1 - IoU, matches at IoU >= 0.5).

`true_identities` gives the detections the identities a perfect linker would: scored with
`tracking_scores`, they bound what any linking of those detections reaches, so that the errors of
a tracked sequence split into the detector's (under the bound) and the linking's (the rest).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .tracking import grown_masks, mask_iou

MATCH_IOU = 0.5


def frame_iou(true_masks: np.ndarray, pred_masks: np.ndarray) -> np.ndarray:
    """N_true x N_pred mask IoU of one frame (N x H x W bool stacks, overlaps kept)."""
    return mask_iou(grown_masks(true_masks, 0), grown_masks(pred_masks, 0))


def frame_matches(iou: np.ndarray, threshold: float = MATCH_IOU) -> list[tuple[int, int]]:
    """One-to-one (true, predicted) pairs of highest total IoU, each at IoU >= threshold."""
    if iou.size == 0:
        return []
    rows, cols = linear_sum_assignment(-iou)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= threshold]


def true_identities(true_stacks: Sequence[np.ndarray], true_ids: Sequence[np.ndarray],
                    pred_stacks: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Identities of the detections (pred_stacks[t]: frame t's N x H x W masks) as a perfect linker
    would give them: a detection matched to a true worm (IoU >= 0.5, `frame_matches`) takes that
    worm's identity (true_ids[t]), every other detection an identity of its own, used once."""
    unused = 1 + max((int(np.max(ids)) for ids in true_ids if len(ids)), default=0)
    out = []
    for masks, ids, p_masks in zip(true_stacks, true_ids, pred_stacks, strict=True):
        given = np.zeros(len(p_masks), dtype=np.int64)
        for r, c in frame_matches(frame_iou(masks, p_masks)):
            given[c] = ids[r]
        for c in np.flatnonzero(given == 0):
            given[c], unused = unused, unused + 1
        out.append(given)
    return out


def tracking_scores(true_stacks: Sequence[np.ndarray], true_ids: Sequence[np.ndarray],
                    pred_stacks: Sequence[np.ndarray], pred_ids: Sequence[np.ndarray]) -> dict:
    """usual_label, found, idf1, mota, id_switches (see the module docstring) for one sequence.

    true_stacks[t] / pred_stacks[t]: frame t's N x H x W masks; *_ids[t]: their identities."""
    import motmetrics

    accumulator = motmetrics.MOTAccumulator(auto_id=True)
    carried: dict[int, Counter] = {}
    true_total = 0
    for masks, ids, p_masks, p_ids in zip(true_stacks, true_ids, pred_stacks, pred_ids, strict=True):
        iou = frame_iou(masks, p_masks)
        true_total += len(masks)
        for r, c in frame_matches(iou):
            carried.setdefault(int(ids[r]), Counter())[int(p_ids[c])] += 1
        distance = np.where(iou >= MATCH_IOU, 1.0 - iou, np.nan)
        accumulator.update([int(i) for i in ids], [int(i) for i in p_ids], distance)
    found = sum(sum(c.values()) for c in carried.values())
    usual = sum(c.most_common(1)[0][1] for c in carried.values())
    host = motmetrics.metrics.create()
    summary = host.compute(accumulator, metrics=["idf1", "mota", "num_switches"], name="sequence")
    return {"usual_label": usual / found if found else float("nan"),
            "found": found / true_total if true_total else float("nan"),
            "idf1": float(summary["idf1"].iloc[0]), "mota": float(summary["mota"].iloc[0]),
            "id_switches": int(summary["num_switches"].iloc[0]),
            "matched": found, "true": true_total}
