"""From core results to napari layer-data tuples ``(data, kwargs, layer_type)``; no viewer needed.

Stacks: every function takes a list of per-plane Predictions; with more than one
plane the layers get the stack's leading axis (T x H x W, points/vectors with a t column).
"""

from __future__ import annotations

import numpy as np

from semiconv import __version__
from semiconv.editing import EditedPlane, flat_labels
from semiconv.result_files import prediction_rows, table_features, worm_rows
from semiconv.tracking import tracked_labels

from ._instance_stack import FrameInstanceStack

WORM_COLORS = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
               "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8", "#800000", "#aaffc3"]


def labels_features(rows: list[dict], frame: int | None = None) -> dict[str, list]:
    """The per-worm table (semiconv.result_files.table_features) as a Labels layer's features, with
    napari's `index` column: the label each row describes, so that hovering a worm shows its own
    row. napari looks a stack's labels up in one table for every frame, so in a stack only the rows
    of `frame` carry their label (the others a negative placeholder): call again (or
    `show_frame_features`) when the frame changes."""
    features = table_features(rows)
    keys = features.get("track_id", features.get("label", []))
    planes = features.get("plane", [0] * len(keys))
    features["index"] = [int(k) if frame is None or int(p) == frame else -(i + 1)
                         for i, (k, p) in enumerate(zip(keys, planes, strict=True))]
    return features


def show_frame_features(layer, frame: int) -> None:
    """Point a stack's Labels layer's hover lookup (its features' `index`) at `frame`'s rows."""
    features = layer.features
    if "index" not in features or "plane" not in features or not len(features):
        return
    key = "track_id" if "track_id" in features else "label"
    index = np.where(features["plane"].to_numpy() == frame, features[key].to_numpy(), -(np.arange(len(features)) + 1))
    if np.array_equal(index, features["index"].to_numpy()):
        return
    features = features.copy()
    features["index"] = index.astype(int)
    layer.features = features


def image_layer(image: np.ndarray, name: str, **kwargs) -> tuple:
    return (image, {"name": name, **kwargs}, "image")


def _stackify(arrays):
    return arrays[0] if len(arrays) == 1 else np.stack(arrays)


def instance_stack(masks: list, ids: list):
    """A result's instance stack layer data (one plane per worm, each worm's plane holding its id;
    uint8 while the ids fit, else uint16) from each plane's N_t x H x W bool masks (or
    semiconv.packed_masks.PackedMasks) and N_t ids: of one plane, an N x H x W array (N at least
    1); of a time-lapse, T x N x H x W that holds its frames as bits and builds the ones napari
    shows (FrameInstanceStack)."""
    if len(masks) > 1:
        return FrameInstanceStack(masks, ids)
    return FrameInstanceStack(masks, ids).frame(0)


def per_plane(preds: list, image) -> object:
    """`image(pred)` of one plane's Prediction; of a stack's, a T x ... dask stack whose frame t is
    `image(preds[t])`, computed only when napari shows that frame (nothing copied; the frame index,
    not the Prediction, goes into the task, so that dask does not walk the Prediction's fields)."""
    import dask
    import dask.array as da

    first = image(preds[0])
    if len(preds) == 1:
        return first
    frame = dask.delayed(lambda t: image(preds[t]))
    return da.stack([da.from_delayed(frame(t), first.shape, first.dtype) for t in range(len(preds))])


def stack_axis_labels(multi: bool) -> tuple[str, ...]:
    """Axis names of an instance stack layer, (frame,) worm, y, x: its worm axis gets a slider of its
    own, which the viewer then names "worm" beside the "frame" slider."""
    return ("frame", "worm", "y", "x") if multi else ("worm", "y", "x")


def instance_layers(masks: np.ndarray, name: str, scores=None, visible_stack: bool = False) -> list[tuple]:
    """Ground truth or loaded stacks (N x H x W bool): `plane_layers` of one plane, worms 1..N
    measured here."""
    masks = np.asarray(masks, dtype=bool)
    ids = np.arange(1, len(masks) + 1)
    scores = np.full(len(masks), np.nan) if scores is None else np.asarray(scores, float)
    plane = EditedPlane(masks, ids, scores, np.zeros(len(masks), bool), [])
    return plane_layers([plane], worm_rows(masks, None if np.isnan(scores).all() else scores), name,
                        stack_name=f"{name} instance stack", visible_stack=visible_stack)


def plane_layers(planes: list, rows: list[dict], name: str, metadata: dict | None = None, stack_name: str | None = None,
                 visible_stack: bool = False) -> list[tuple]:
    """A Labels layer (overlaps resolved by score, semiconv.editing.flat_labels) and the per-worm
    stack (each worm's plane holds its id) of per-plane worms (semiconv.editing.EditedPlane; more
    than one: a T x ... time-lapse), the table `rows` as features; linked by metadata (role, result)."""
    multi = len(planes) > 1
    stack = instance_stack([p.masks for p in planes], [p.ids for p in planes])
    labels = np.stack([flat_labels(p.masks, p.ids, p.scores) for p in planes])
    meta = {**(metadata or {}), "result": name}
    features = labels_features(rows, 0 if multi else None)
    return [
        (labels if multi else labels[0], {"name": f"{name} instances", "features": features,
                                          "metadata": {**meta, "role": "instances"}}, "labels"),
        (stack, {"name": stack_name or f"{name} instance stack (one plane per worm)",
                 "visible": visible_stack, "features": features, "axis_labels": stack_axis_labels(multi),
                 "metadata": {**meta, "role": "instance stack"}}, "labels"),
    ]


def prediction_layers(preds: list, name: str, metadata: dict, rows: list[dict] | None = None, vector_step: int = 6,
                      track_ids: list | None = None) -> list[tuple]:
    """All result layers of a segmentation of one image layer (preds: one per plane): instances
    (its features: the per-worm table `rows` of semiconv.result_files; default: measured here),
    instance stack, displacement, embedding, foreground probability (models with a
    foreground head), seeds; with `track_ids` (semiconv.tracking.link_frames; `rows` then carry
    the tracking columns) the labels are track ids and a Tracks layer follows each worm."""
    multi = len(preds) > 1
    if rows is None:
        rows = prediction_rows(preds)
    features = labels_features(rows, 0 if multi else None)
    if track_ids is not None:
        metadata = {**metadata, "tracked": True}
        labels = tracked_labels([p.masks for p in preds], [p.scores for p in preds], track_ids)
        labels = labels if multi else labels[0]
    else:
        labels = _stackify([p.labels for p in preds])
    metadata = {**metadata, "result": name}
    layers = [(labels, {"name": f"{name} instances", "features": features, "metadata": {**metadata, "role": "instances"},
                        "opacity": 0.6}, "labels")]
    ids = track_ids if track_ids is not None else [np.arange(1, len(p) + 1) for p in preds]
    stack = instance_stack([p.masks for p in preds], ids)
    layers.append((stack, {"name": f"{name} instance stack (one plane per worm)", "visible": False,
                           "axis_labels": stack_axis_labels(multi),
                           "metadata": {**metadata, "role": "instance stack"}}, "labels"))
    if all(p.displacement is not None for p in preds):
        layers.append(displacement_layer(preds, labels, name, metadata, vector_step))
        layers.append((per_plane(preds, embedding_rgb), {"name": f"{name} embedding", "rgb": True,
                                                                        "visible": False, "metadata": dict(metadata)}, "image"))
    if all(p.foreground is not None for p in preds):
        layers.append((per_plane(preds, lambda p: np.asarray(p.foreground, np.float32)), {"name": f"{name} foreground probability", "visible": False,
                                                                  "colormap": "magma", "contrast_limits": (0.0, 1.0),
                                                                  "metadata": dict(metadata)}, "image"))
    points, scores, ids = [], [], []
    for t, p in enumerate(preds):
        for i in range(len(p)):
            points.append(([t] if multi else []) + [float(p.seeds[i, 0]), float(p.seeds[i, 1])])
            scores.append(float(p.scores[i]))
            ids.append(int(track_ids[t][i]) if track_ids is not None else i + 1)
    points = np.asarray(points, dtype=float).reshape(-1, 3 if multi else 2)
    layers.append((points, {"name": f"{name} seeds", "features": {"label": ids, "score": scores}, "size": 4,
                            "face_color": "yellow", "border_color": "black",
                            "text": {"string": "{label}: {score:.2f}", "size": 8, "color": "yellow", "anchor": "upper_left"},
                            "metadata": {**metadata, "role": "seeds"}}, "points"))
    if track_ids is not None:
        layers.append(tracks_layer(rows, name, metadata))
    return layers


def tracks_layer(rows: list[dict], name: str, metadata: dict) -> tuple:
    """A Tracks layer: each worm's centre-line midpoint over frames (rows with track_id, frame,
    midpoint_row/col, as semiconv.tracking.track_rows leaves them), with its speed as a feature."""
    ordered = sorted((r for r in rows if np.isfinite(r.get("midpoint_row", np.nan))), key=lambda r: (r["track_id"], r["frame"]))
    data = np.array([[r["track_id"], r["frame"], r["midpoint_row"], r["midpoint_col"]] for r in ordered], float).reshape(-1, 4)
    speed = [float(r.get("speed_px_per_frame", np.nan)) for r in ordered]
    return (data, {"name": f"{name} tracks", "features": {"speed_px_per_frame": np.nan_to_num(speed)},
                   "tail_length": 10, "tail_width": 3, "metadata": {**metadata, "role": "tracks"}}, "tracks")


def displacement_layer(preds: list, labels: np.ndarray, name: str, metadata: dict, step: int = 6) -> tuple:
    """Vectors (N x 2 x D): from worm pixels on a grid every `step` pixels towards the point they
    vote for; feature `worm`: the label there in `labels`, the instances layer's data ((T x) H x W:
    a tracked stack's track ids)."""
    multi = len(preds) > 1
    starts, vectors, worms = [], [], []
    for t, p in enumerate(preds):
        shown = labels[t] if multi else labels
        H, W = shown.shape
        grid = np.zeros((H, W), bool)
        grid[step // 2:: step, step // 2:: step] = True
        rows, cols = np.nonzero(grid & (shown > 0))
        d = p.displacement[:, rows, cols].T  # (dy, dx)
        pos = np.stack([rows, cols], 1).astype(float)
        if multi:
            pos = np.concatenate([np.full((len(rows), 1), t), pos], 1)
            d = np.concatenate([np.zeros((len(rows), 1)), d], 1)
        starts.append(pos)
        vectors.append(d)
        worms.append(shown[rows, cols].astype(int))
    D = 3 if multi else 2
    data = np.stack([np.concatenate(starts).reshape(-1, D), np.concatenate(vectors).reshape(-1, D)], 1) if starts else np.zeros((0, 2, D))
    worm = np.concatenate(worms) if worms else np.zeros(0, int)
    colors = np.array([WORM_COLORS[(w - 1) % len(WORM_COLORS)] for w in worm]) if len(worm) else "white"
    return (data, {"name": f"{name} displacement", "features": {"worm": worm}, "edge_color": colors,
                   "edge_width": 1.0, "length": 1.0, "vector_style": "arrow",
                   "metadata": {**metadata, "role": "displacement"}}, "vectors")


def embedding_rgb(pred) -> np.ndarray:
    """Psi (D x H x W) projected to RGB by PCA over the foreground; background black. H x W x 3 float in [0, 1]."""
    emb = pred.embedding
    H, W = emb.shape[1:]
    fg = np.asarray(pred.masks).reshape(-1, H, W).any(0)  # a tracked stack's planes hold no label image
    rgb = np.zeros((H, W, 3), np.float32)
    if fg.sum() < 3:
        return rgb
    x = emb[:, fg].T.astype(np.float64)
    x -= x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    proj = x @ vt[:3].T
    if proj.shape[1] < 3:
        proj = np.pad(proj, ((0, 0), (0, 3 - proj.shape[1])))
    lo, hi = np.percentile(proj, 1, axis=0), np.percentile(proj, 99, axis=0)
    rgb[fg] = np.clip((proj - lo) / np.maximum(hi - lo, 1e-6), 0, 1)
    return rgb


def affinity_layer(pred, worm: int, name: str, plane: int | None = None) -> tuple:
    """K(seed_worm, u) over the image as an Image layer (worm is the 1-based label)."""
    data = pred.affinity(worm - 1)
    where = f" t={plane}" if plane is not None else ""
    return (data, {"name": f"{name} affinity", "colormap": "inferno", "contrast_limits": (0.0, 1.0), "blending": "additive",
                   "metadata": {"worm": worm, "plane": plane, "description": f"K(seed of worm {worm}{where}, u)",
                                "semiconv_version": __version__}}, "image")
