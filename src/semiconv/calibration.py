"""Layer 3 of inference: choosing a model's thresholds on annotated images.

One network pass per image (`network_outputs.raw_outputs`), then every candidate combination of
mask, foreground and containment thresholds is post-processed by postprocess's own steps
(`after_nms` and `without_contained`, i.e. `detections`, then `cleaned`) and scored at every
candidate score threshold; the best avAP wins, near-ties going to TP/(TP+FP+FN) at IoU
0.5. Used by the training loop after each validation pass and by benchmarks/release/choose_cleanup.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np
import torch

from .config import ModelConfig
from .metrics import (
    TrueWorms,
    coco_metrics,
    image_matching,
    matching_summary,
    summary_from_matching,
)
from .network_outputs import raw_outputs
from .postprocess import Thresholds, after_nms, cleaned, dense_maps, without_contained

SCORE_THRESHOLD_CANDIDATES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MASK_THRESHOLD_CANDIDATES = (0.3, 0.4, 0.5, 0.6)  # tried when masks are cut by the foreground head
FOREGROUND_THRESHOLD_CANDIDATES = (0.5, 0.6, 0.7, 0.8)
CONTAINMENT_CANDIDATES = (1.0, 0.8, 0.6)  # 1 = no suppression of masks lying under others
#: lowest detection score computed: below every candidate, and what COCO AP sees
MIN_SCORE = 0.05
# avAP differences below this are a few worm-level events on the 137 validation worms (one worm
# at one IoU threshold in one of 10 images moves avAP by about 0.0015): treated as a tie
AVAP_TIE = 0.005


def preferred(summaries: list[dict]) -> int:
    """Index of the summary to choose: the highest avAP, and among those within AVAP_TIE of it
    the highest TP/(TP+FP+FN) at IoU 0.5 (then avAP)."""
    top = max(s["avAP"] for s in summaries)
    close = [i for i, s in enumerate(summaries) if s["avAP"] >= top - AVAP_TIE]
    return max(close, key=lambda i: (summaries[i]["score@0.5"], summaries[i]["avAP"]))


def best_score_threshold(preds, truths, candidates=SCORE_THRESHOLD_CANDIDATES, finish=None, with_coco=True) -> tuple[float, dict]:
    """The candidate score threshold `preferred` picks (the best avAP, ties to TP/(TP+FP+FN)
    at IoU 0.5), and all metrics there. preds: per image (masks N x H x W bool, scores N).

    `finish(i, masks)`, if given, post-processes image i's masks scoring at least the candidate
    (as a model with that score threshold would, e.g. growth into the foreground) before they
    are scored; COCO AP then sees the finished masks plus the lower-scoring ones unchanged.
    with_coco=False leaves the COCO figures out (the costly part when many variants are compared)."""
    def finished(t):
        out = []
        for i, (masks, scores) in enumerate(preds):
            above = np.asarray(scores) >= t
            out.append((np.concatenate([finish(i, masks[above]), masks[~above]]),
                        np.concatenate([scores[above], scores[~above]])))
        return out

    scored = [finished(t) for t in candidates] if finish else [preds] * len(candidates)
    summaries = [matching_summary(p, truths, t) for p, t in zip(scored, candidates, strict=True)]
    best = preferred(summaries)
    return candidates[best], {**(coco_metrics(scored[best], truths) if with_coco else {}), **summaries[best]}


def threshold_combinations(config: ModelConfig) -> list[tuple[float, float, float]]:
    """(mask, foreground, containment) thresholds tried; mask and foreground are tried only with a
    foreground head (else the model's mask threshold, and the foreground value is unused)."""
    if config.foreground_head:
        pairs = [(m, f) for m in MASK_THRESHOLD_CANDIDATES for f in FOREGROUND_THRESHOLD_CANDIDATES]
    else:
        pairs = [(config.mask_threshold, config.foreground_threshold)]
    return [(m, f, c) for m, f in pairs for c in CONTAINMENT_CANDIDATES]


def variants(raw, config: ModelConfig, combos: list[tuple]) -> tuple[list[tuple], np.ndarray | None]:
    """For each (mask, foreground, containment) in `combos`: (masks N x H x W bool, scores N,
    Thresholds) of `postprocess.detections` at MIN_SCORE (its two steps: mask NMS once per
    (mask, foreground), containment per combination), highest score first, masks not yet
    cleaned (growth depends on which masks pass the score threshold), and the foreground
    probability H x W (None without a foreground head)."""
    foreground_probability, _, _ = dense_maps(raw, config.coord_scale)
    nms_survivors: dict[tuple, object] = {}  # (mask, foreground) -> after_nms: the same for every containment
    results = []
    for mask, foreground, containment in combos:
        thresholds = Thresholds.of(config, score=MIN_SCORE, mask=mask, foreground=foreground, containment=containment)
        if (mask, foreground) not in nms_survivors:
            nms_survivors[mask, foreground] = after_nms(raw, thresholds, config.coord_scale)
        found = without_contained(nms_survivors[mask, foreground], thresholds)
        results.append((found.masks, found.scores, thresholds))
    return results, foreground_probability


def image_table(raw, truth: np.ndarray, config: ModelConfig, combos: list[tuple]) -> np.ndarray:
    """One image's `metrics.image_matching` vector for every (mask, foreground, containment)
    combination and every candidate score threshold, masks finished (`postprocess.cleaned`) as a
    model with those thresholds would: array len(combos) x len(SCORE_THRESHOLD_CANDIDATES) x K."""
    worms = TrueWorms(truth)
    table = []
    found, foreground = variants(raw, config, combos)
    for masks, scores, thresholds in found:
        row = []
        for t in SCORE_THRESHOLD_CANDIDATES:
            above = scores >= t
            row.append(image_matching(cleaned(masks[above], scores[above], foreground, thresholds, t), worms))
        table.append(row)
    return np.asarray(table)


def _image_table_job(args):
    return image_table(*args)


def choose_thresholds(network, config: ModelConfig, samples, device, workers: int = 0) -> tuple[float, dict]:
    """Predict every sample (objects with .image C x H x W normalised and .masks N x H x W bool)
    and pick the thresholds on them (`choose_from_outputs`). The network is left in the mode it
    was in; metrics["seconds_per_image"] is the time per image, search included."""
    was_training = network.training
    network.eval()
    start = time.perf_counter()

    def outputs():  # one image at a time: raw outputs are large
        with torch.no_grad():
            for s in samples:
                yield raw_outputs(network, config, s.image, device, MIN_SCORE, dense=False)

    try:
        threshold, metrics = choose_from_outputs(outputs, [s.masks for s in samples], config, workers)
    finally:
        network.train(was_training)
    metrics["seconds_per_image"] = (time.perf_counter() - start) / max(1, len(samples))
    return threshold, metrics


def choose_from_outputs(outputs: Callable[[], Iterable], truths: list[np.ndarray], config: ModelConfig,
                        workers: int = 0) -> tuple[float, dict]:
    """The score threshold, and the (mask, foreground, containment) thresholds, with the best avAP
    (near-ties to TP/(TP+FP+FN) at IoU 0.5) over images whose raw outputs (at MIN_SCORE, e.g.
    out-of-fold predictions of several models) and true masks are given. `outputs()` yields the
    raw outputs in the order of `truths`; it is called twice (the search, then COCO AP of the
    chosen combination), so nothing large is kept. `workers` > 1: images are searched in that
    many processes. Returns the score threshold and the metrics there, which record every chosen
    threshold under its config name (score_threshold, mask_threshold, foreground_threshold,
    mask_containment_threshold: `ModelConfig.with_thresholds` takes them)."""
    combos = threshold_combinations(config)
    total = None
    for table in _tables(outputs(), truths, config, combos, workers):
        total = table if total is None else total + table
    if total is None:
        raise ValueError("no images to choose thresholds on")
    n = len(truths)
    per_combo = [[summary_from_matching(total[c, k], n, t) for k, t in enumerate(SCORE_THRESHOLD_CANDIDATES)]
                 for c in range(len(combos))]
    best_t = [preferred(summaries) for summaries in per_combo]
    best = preferred([per_combo[c][best_t[c]] for c in range(len(combos))])
    threshold = SCORE_THRESHOLD_CANDIDATES[best_t[best]]
    preds = []
    for raw in outputs():  # COCO AP for the chosen combination only: finished above the threshold
        [(masks, scores, thresholds)], foreground = variants(raw, config, [combos[best]])
        preds.append((cleaned(masks, scores, foreground, thresholds, threshold), scores))
    metrics = {**coco_metrics(preds, truths), **per_combo[best][best_t[best]]}
    mask, foreground, containment = combos[best]
    metrics.update(mask_threshold=mask, foreground_threshold=foreground, mask_containment_threshold=containment)
    return threshold, metrics


def _tables(raws: Iterable, truths: list[np.ndarray], config: ModelConfig, combos: list[tuple], workers: int):
    """`image_table` of each image, in `workers` processes when > 1 (a few images in flight)."""
    if workers <= 1:
        for raw, truth in zip(raws, truths, strict=True):
            yield image_table(raw, truth, config, combos)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = []
        for raw, truth in zip(raws, truths, strict=True):
            pending.append(pool.submit(_image_table_job, (raw, truth, config, combos)))
            while len(pending) >= 2 * workers:
                yield pending.pop(0).result()
        for job in pending:
            yield job.result()
