"""Instance-segmentation metrics on overlapping masks.

- COCO mask AP / AP50 / AP75 (pycocotools COCOeval "segm", maxDets 100).
- The BBBC010 literature's score: per image TP / (TP + FP + FN) after
  one-to-one Hungarian matching on IoU, at t = 0.5 ... 0.9, averaged over
  images; avAP = mean over the five thresholds.
- Overlap recall: among true worms overlapping another, the fraction matched
  by some prediction at IoU >= 0.5 and >= 0.8.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from scipy.optimize import linear_sum_assignment

from .data.instances import overlapping_instances

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def mask_overlaps(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shared pixels P x T, areas of pred P, areas of true T) of two bool stacks (P x H x W, T x H x W)."""
    return TrueWorms(true).overlaps(pred)


def iou_from_overlaps(inter: np.ndarray, pred_area: np.ndarray, true_area: np.ndarray) -> np.ndarray:
    union = pred_area[:, None] + true_area[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def mask_iou(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """IoU matrix (P x T) of two bool stacks (P x H x W, T x H x W)."""
    return TrueWorms(true).iou(pred)


class TrueWorms:
    """One image's true masks (T x H x W bool), prepared once for scoring many predictions against
    them: the pixels any worm covers (only those can be shared), each worm's area, and (when
    asked) which worms overlap another."""

    def __init__(self, masks: np.ndarray):
        self.masks = np.asarray(masks, bool)
        flat = self.masks.reshape(len(self.masks), int(np.prod(self.masks.shape[1:])))  # also for 0 masks
        self.on_worm = np.flatnonzero(flat.any(0)) if len(flat) else np.zeros(0, np.int64)
        self.inside = flat[:, self.on_worm].astype(np.float32)  # T x (pixels on some worm)
        self.areas = np.count_nonzero(flat, axis=1).astype(np.float32)

    def __len__(self) -> int:
        return len(self.masks)

    @cached_property
    def overlapping(self) -> np.ndarray:
        return overlapping_instances(self.masks)

    def overlaps(self, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(shared pixels P x T, areas of pred P, areas of these worms T) for a bool stack P x H x W."""
        p = pred.reshape(len(pred), int(np.prod(pred.shape[1:])))
        inter = p[:, self.on_worm].astype(np.float32) @ self.inside.T
        return inter, np.count_nonzero(p, axis=1).astype(np.float32), self.areas

    def iou(self, pred: np.ndarray) -> np.ndarray:
        """IoU matrix (P x T) of a bool stack P x H x W against these worms."""
        if len(pred) == 0 or len(self) == 0:
            return np.zeros((len(pred), len(self)))
        return iou_from_overlaps(*self.overlaps(pred))


def scores_from_iou(iou: np.ndarray, thresholds=THRESHOLDS) -> dict:
    """TP/(TP+FP+FN) at each threshold from one image's IoU matrix (P predictions x T true worms)."""
    matched = np.zeros(0)
    if iou.size:
        rows, cols = linear_sum_assignment(iou, maximize=True)
        matched = iou[rows, cols]
    out = {}
    for t in thresholds:
        tp = int((matched >= t).sum())
        fp, fn = iou.shape[0] - tp, iou.shape[1] - tp
        denom = tp + fp + fn
        out[t] = tp / denom if denom else 1.0
    return out


def image_matching(pred: np.ndarray, true) -> np.ndarray:
    """One image's matching figures as a vector: TP/(TP+FP+FN) at each of THRESHOLDS, then how
    many true worms that overlap another are matched at IoU >= 0.5 and >= 0.8, and how many such
    worms there are. true: T x H x W bool, or `TrueWorms` of them. Summed over images by
    `summary_from_matching`."""
    true = true if isinstance(true, TrueWorms) else TrueWorms(true)
    iou = true.iou(pred)
    scores = scores_from_iou(iou)
    overlapping = true.overlapping
    best = iou[:, overlapping].max(0) if len(pred) and overlapping.any() else np.zeros(int(overlapping.sum()))
    return np.array([*(scores[t] for t in THRESHOLDS), (best >= 0.5).sum(), (best >= 0.8).sum(), overlapping.sum()], float)


def summary_from_matching(total: np.ndarray, images: int, score_threshold: float) -> dict:
    """matching_summary's dict from the sum of `image_matching` vectors over `images` images."""
    result = {f"score@{t:.1f}": float(total[i] / images) if images else 0.0 for i, t in enumerate(THRESHOLDS)}
    result["avAP"] = float(np.mean([result[f"score@{t:.1f}"] for t in THRESHOLDS]))
    overlap_total = total[len(THRESHOLDS) + 2]
    result["overlap_recall@0.5"] = float(total[len(THRESHOLDS)] / overlap_total) if overlap_total else float("nan")
    result["overlap_recall@0.8"] = float(total[len(THRESHOLDS) + 1] / overlap_total) if overlap_total else float("nan")
    result["images"] = images
    result["score_threshold"] = score_threshold
    return result


def coco_metrics(preds: list[tuple[np.ndarray, np.ndarray]], truths: list[np.ndarray]) -> dict:
    """COCO segm AP, AP50, AP75 via pycocotools. preds: per image (masks N x H x W, scores N)."""
    import contextlib
    import io

    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, detections = [], [], []
    ann_id = 1
    for img_id, (true, (pmasks, pscores)) in enumerate(zip(truths, preds, strict=True), start=1):
        h, w = true.shape[1:] if len(true) else pmasks.shape[1:]
        images.append({"id": img_id, "height": int(h), "width": int(w)})
        for m in true:
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            annotations.append({
                "id": ann_id, "image_id": img_id, "category_id": 1, "iscrowd": 0,
                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()},
                "area": float(m.sum()), "bbox": list(mask_utils.toBbox(rle)),
            })
            ann_id += 1
        for m, s in zip(pmasks, pscores, strict=True):
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            detections.append({"image_id": img_id, "category_id": 1, "score": float(s),
                               "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}})
    if not detections:
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "worm"}]}
        gt.createIndex()
        dt = gt.loadRes(detections)
        ev = COCOeval(gt, dt, "segm")
        ev.params.maxDets = [1, 10, 100]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"AP": float(ev.stats[0]), "AP50": float(ev.stats[1]), "AP75": float(ev.stats[2])}


def matching_summary(preds: list[tuple[np.ndarray, np.ndarray]], truths: list[np.ndarray], score_threshold: float = 0.0) -> dict:
    """The matching score at each threshold, avAP and overlap recall, using predictions with
    score >= score_threshold."""
    total = np.zeros(len(THRESHOLDS) + 3)
    for (pmasks, pscores), true in zip(preds, truths, strict=True):
        keep = pmasks[np.asarray(pscores) >= score_threshold] if len(pmasks) else pmasks
        total += image_matching(keep, true)
    return summary_from_matching(total, len(truths), score_threshold)


def evaluate_predictions(preds, truths, score_threshold: float = 0.0) -> dict:
    """COCO AP (every prediction, with its score) plus the matching summary at `score_threshold`."""
    return {**coco_metrics(preds, truths), **matching_summary(preds, truths, score_threshold)}


def error_census(preds, truths, score_threshold: float = 0.0, iou: float = 0.5) -> dict:
    """Where the errors are, at one IoU (Hungarian matching per image, predictions scoring at
    least `score_threshold`). preds: per image (masks N x H x W, scores N); truths: M x H x W.

    missed true worms: `merged` (at least half of the worm lies in a prediction that also covers
    half of another true worm, or is matched to one), `rough` (best IoU 0.3 to `iou`), `not_found`
    (the rest); `missed_touching`: of the missed, those touching or crossing another worm.
    false positives: `fragment` (at least half of it on a true worm that another prediction
    matches: a worm found twice), `merge` (covers half of two or more true worms), `off_worm`
    (less than half of it on any worm), `other`. Also the fraction of matches with IoU >= 0.8."""
    from scipy import ndimage as ndi

    counts = dict.fromkeys(("true", "touching", "missed", "merged", "rough", "not_found", "missed_touching", "predicted",
                            "false_positives", "fragment", "merge", "off_worm", "other", "matched", "matched_iou_0.8"), 0)
    for (pmasks, pscores), true in zip(preds, truths, strict=True):
        pred = pmasks[np.asarray(pscores) >= score_threshold] if len(pmasks) else pmasks
        true = np.asarray(true, bool)
        inter, pred_area, true_area = mask_overlaps(pred, true)  # shared pixels P x T, areas
        ious = iou_from_overlaps(inter, pred_area, true_area)
        rows, cols = linear_sum_assignment(ious, maximize=True) if ious.size else (np.zeros(0, int), np.zeros(0, int))
        good = ious[rows, cols] >= iou
        match_of_true = dict(zip(cols[good].tolist(), rows[good].tolist(), strict=True))
        matched_preds = set(rows[good].tolist())
        covers = inter >= 0.5 * np.maximum(true_area[None], 1)  # prediction p covers half of worm t
        grown = [ndi.binary_dilation(m, iterations=1) for m in true]
        touching = [any((grown[t] & true[u]).any() for u in range(len(true)) if u != t) for t in range(len(true))]
        counts["true"] += len(true)
        counts["touching"] += int(sum(touching))
        counts["predicted"] += len(pred)
        counts["matched"] += int(good.sum())
        counts["matched_iou_0.8"] += int((ious[rows, cols][good] >= 0.8).sum())
        for t in range(len(true)):
            if t in match_of_true:
                continue
            counts["missed"] += 1
            counts["missed_touching"] += int(touching[t])
            holders = np.flatnonzero(covers[:, t]) if len(pred) else []
            if any(covers[p].sum() >= 2 or p in matched_preds for p in holders):
                counts["merged"] += 1
            elif len(pred) and ious[:, t].max() >= 0.3:
                counts["rough"] += 1
            else:
                counts["not_found"] += 1
        matched_true = set(match_of_true)
        for p in range(len(pred)):
            if p in matched_preds:
                continue
            counts["false_positives"] += 1
            on_worm = inter[p] >= 0.5 * max(pred_area[p], 1) if len(true) else np.zeros(0, bool)
            if covers[p].sum() >= 2:
                counts["merge"] += 1
            elif any(on_worm[t] and t in matched_true for t in range(len(true))):
                counts["fragment"] += 1
            elif not len(true) or inter[p].max() < 0.5 * max(pred_area[p], 1):
                counts["off_worm"] += 1
            else:
                counts["other"] += 1
    counts["matched_iou_0.8_fraction"] = counts["matched_iou_0.8"] / counts["matched"] if counts["matched"] else float("nan")
    return counts
