"""The Segment widget's work off the UI thread: segmenting planes (one prediction thread shared
with the background work), the result's table and layers, redrawing at new thresholds, loading
the model and segmenting the chosen image ahead."""

from __future__ import annotations

import hashlib
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from napari.layers import Layer
from napari.qt.threading import thread_worker

from semiconv.errors import SemiconvError
from semiconv.inference import cached_model
from semiconv.packed_masks import hold_in_stack
from semiconv.review import worm_doubts
from semiconv.scale import rescale_for_next_plane, scale_notes, segment_plane
from semiconv.segment import hold_stack_plane, tabulate
from semiconv.tracking import joined_in_sequence, tracked_frame
from semiconv.tracking_settings import TrackingSettings

from ._layers import prediction_layers

#: at most this many planes keep their network outputs (a threshold change is then post-processing only)
KEEP_OUTPUTS_PLANES = 16
#: planes larger than this are not segmented ahead in the background (the model is still loaded)
AHEAD_PIXELS = 4_000_000
#: every prediction of the widget runs on this one thread, one at a time: the background work and
#: the Segment clicks share the model, and torch's per-thread state stays warm between them
PREDICTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semiconv-predict")
#: predictions made ahead, in the background, with a model's own thresholds, the last two:
#: (id of the loaded model, fingerprint of the plane) -> (that model, (Prediction, warnings));
#: the entry holds the model, so its id cannot pass to a model loaded later
_AHEAD: dict[tuple, tuple] = {}


def _fingerprint(plane: np.ndarray) -> tuple:
    data = np.ascontiguousarray(plane)
    return data.shape, str(data.dtype), hashlib.blake2b(data.view(np.uint8), digest_size=16).hexdigest()


def predict_plane(model, plane: np.ndarray, fluorescence: np.ndarray | None = None, score_threshold: float | None = None,
                  mask_threshold: float | None = None, ahead: bool = False, rescale: float | str | None = None,
                  pixel_size: float | None = None, keep_outputs: bool = True, carried_boxes: np.ndarray | None = None) -> tuple:
    """(Prediction, warning messages, factor segmented at) of one plane at the model's scale
    (semiconv.scale.segment_plane: `rescale` None (auto), "auto" or a factor); runs on PREDICTOR. A plane segmented ahead (`ahead`:
    kept) with the model's own thresholds and scale is not segmented again: same model object,
    same pixels, same thresholds give the same prediction. `keep_outputs`: the Prediction keeps
    the network's outputs (a threshold change is then post-processing only). `carried_boxes`: a
    time-lapse's previous frame's worm boxes (semiconv.tracking.carried_boxes)."""
    plain = (fluorescence is None and score_threshold is None and mask_threshold is None and rescale is None
             and not pixel_size and carried_boxes is None)
    key = (id(model), _fingerprint(plane)) if plain else None
    if key is not None and key in _AHEAD and (_AHEAD[key][1][0].kept is not None or not keep_outputs):
        return _AHEAD[key][1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pred, factor, scale_note = segment_plane(model, plane, rescale, pixel_size, fluorescence=fluorescence,
                                                 score_threshold=score_threshold, mask_threshold=mask_threshold,
                                                 keep_outputs=keep_outputs, carried_boxes=carried_boxes)
    result = pred, [str(w.message) for w in caught] + scale_notes(factor, scale_note), factor
    if ahead and key is not None:
        _AHEAD[key] = model, result
        while len(_AHEAD) > 2:
            _AHEAD.pop(next(iter(_AHEAD)))
    return result


@thread_worker
def preload_worker(model_name: str, device: str, plane: np.ndarray | None = None) -> None:
    """Load the model; with `plane` (the image the user is likely to segment, with the model's own
    thresholds), also segment it ahead, so a click on Segment finds it done (and, for another
    image, every kernel and buffer of the network and post-processing warm)."""
    try:
        model = cached_model(model_name, device)
        if plane is not None and not model.config.takes_fluorescence:
            PREDICTOR.submit(predict_plane, model, plane, ahead=True).result()
    except Exception:  # noqa: BLE001 - nobody asked yet: whatever went wrong is reported at the click
        pass


@thread_worker
def segment_worker(model_name: str, device: str, planes: list, sources: list[tuple[str, int]], score_threshold: float | None,
                   mask_threshold: float | None, fluorescence: list | None = None, pixel_size: float | None = None,
                   input_mode: str | None = None, describe=None, rescale: float | str | None = None,
                   tracking: TrackingSettings | None = None, tta: bool = False):
    """Generator run in a thread: yields ('model', model) then ('plane', k) after each plane; returns
    (predictions, per-worm table rows of each source, layer-data tuples of each source, track ids
    of each source: per plane, or None where not tracked); `tracking`: stacks are linked across
    frames with these settings (semiconv.tracking) and their labels are track ids; `tta`: test-time augmentation
    (semiconv.tta: mirrored passes fused, about 4x the time);
    `sources`: (layer name, number of planes) of each source layer, in order; `describe(source,
    model)` gives the (name, metadata) of a source's result layers, which are built here, off the
    UI thread (None: no layers built). Fluorescence planes (one source only) are measured in each
    worm and fed to models that take them. Problems with the input or model are yielded as
    ('error', message) (returns None), so they reach the user as a notification, not a traceback."""
    preds = []
    try:
        model = cached_model(model_name, device, tta=tta)
        if input_mode and input_mode != model.config.input_mode:
            raise SemiconvError(f"model {model.name!r} takes {model.config.input_mode!r} images, not {input_mode!r}")
        feed = model.config.takes_fluorescence
        if feed and fluorescence is None:
            raise SemiconvError(f"model {model.name!r} also takes the fluorescence image: choose its layer")
        yield ("model", model)
        firsts = set(np.cumsum([0] + [count for _, count in sources])[:-1].tolist())  # each source's first plane
        carried = previous = None
        for k, plane in enumerate(planes):
            if k in firsts:  # a source's first frame: nothing carried from another source
                carried = previous = None
            pred, notes, factor = PREDICTOR.submit(predict_plane, model, plane, fluorescence[k] if feed else None,
                                                   score_threshold, mask_threshold, rescale=rescale, pixel_size=pixel_size,
                                                   keep_outputs=len(planes) <= KEEP_OUTPUTS_PLANES,
                                                   carried_boxes=carried).result()
            if tracking is not None:  # pieces of one worm joined, this frame's boxes carried into the next
                pred, carried = tracked_frame(pred, previous, tracking)
                previous = pred.masks
            if len(planes) > 1:  # a stack's planes wait for its layers: masks as bits, maps in float16, no
                pred = hold_stack_plane(pred, k, dense=True, labels=tracking is None)  # label image where track ids make it
            preds.append(pred)
            rescale = rescale_for_next_plane(rescale, factor, pred)
            for note in notes:
                yield ("warning", note)
            yield ("plane", k + 1)
        rows, layers, tracks, start = [], [], [], 0
        for source, count in sources:
            fl = fluorescence[start:start + count] if fluorescence is not None else None
            own = preds[start:start + count]
            own_rows, ids, built = result_layers(own, fl, pixel_size, tracking, *describe(source, model))
            rows.append(own_rows)
            tracks.append(ids)
            layers.append(built)
            start += count
    except (SemiconvError, MemoryError) as exc:
        where = f" (plane {len(preds) + 1})" if len(planes) > 1 else ""
        yield ("error", f"{exc}{where}")
        return None
    return preds, rows, layers, tracks


def result_layers(preds: list, fluorescence: list | None, pixel_size: float | None, tracking: TrackingSettings | None,
                  name: str, metadata: dict) -> tuple[list[dict], list | None, list]:
    """The table (semiconv.segment.tabulate), track ids (stacks, with `tracking`) and napari layers
    (built here, off the UI thread: layers are plain models, only added in the UI thread) of one
    source's predictions."""
    rows, ids, _ = tabulate(preds, pixel_size, fluorescence, tracking if len(preds) > 1 else None)
    for t, pred in enumerate(preds):  # the review queue's doubt, in the table from the start
        plane_rows = [row for row in rows if row["plane"] == t]
        for row, (doubt, why) in zip(plane_rows, zip(*worm_doubts(plane_rows, pred.masks), strict=True), strict=True):
            row.update(doubt=round(float(doubt), 3), doubt_reasons=why)
    layers = [Layer.create(data, kwargs, kind) for data, kwargs, kind in prediction_layers(preds, name, metadata, rows, track_ids=ids)]
    return rows, ids, layers


@thread_worker
def rethreshold_worker(model, preds: list, score_threshold: float | None, mask_threshold: float | None,
                       fluorescence: list | None, pixel_size: float | None, tracking: TrackingSettings | None, name: str,
                       metadata: dict):
    """New thresholds for a result whose predictions kept their network outputs: post-processing
    only (SemiConvModel.rethreshold), then the same table and layers as a Segment click."""
    start = time.perf_counter()
    new = [model.rethreshold(p, score_threshold, mask_threshold) for p in preds]
    if tracking is not None:
        new = joined_in_sequence(new, tracking)
    if len(new) > 1:
        new = [hold_in_stack(p, dense=True, labels=tracking is None) for p in new]
    rows, ids, layers = result_layers(new, fluorescence, pixel_size, tracking, name, metadata)
    return new, rows, ids, layers, time.perf_counter() - start
