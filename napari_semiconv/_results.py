"""A result's layers, found by their metadata (role, result), and its worms read back from them:
the lookups the Segment, Correct, Export and Fine-tune widgets share."""

from __future__ import annotations

import numpy as np
from napari.layers import Labels

from semiconv.editing import EditedPlane, apply_label_edits
from semiconv.errors import InputError
from semiconv.tracking_settings import TrackingSettings

from ._layers import show_frame_features


def result_layer(viewer, layer, role: str):
    """The layer playing `role` (instance stack, seeds, displacement...) in the same result as
    `layer` (by metadata, not by name); None where there is none."""
    result = (layer.metadata or {}).get("result")
    if result is None:
        return None
    return next((other for other in viewer.layers
                 if (other.metadata or {}).get("role") == role and other.metadata.get("result") == result), None)


def stack_layer_of(viewer, layer: Labels) -> Labels | None:
    """The per-worm stack layer of a result's instances layer; None for any other layer."""
    if (layer.metadata or {}).get("role") != "instances":
        return None
    return result_layer(viewer, layer, "instance stack")


def tracking_of(layer) -> TrackingSettings:
    """The tracking settings a tracked result was made with (its layers' metadata 'tracking');
    the defaults for a result made before they were recorded."""
    recorded = (layer.metadata or {}).get("tracking")
    return TrackingSettings(**recorded) if recorded else TrackingSettings()


def is_yes(value) -> bool:
    """A table cell that says yes (a bool; NaN and missing cells say no)."""
    return isinstance(value, bool | np.bool_) and bool(value)


def edited_planes(layer: Labels, stack_layer: Labels, frames: list[int] | None = None) -> tuple[list[EditedPlane], list[str]]:
    """Each plane's (or each of `frames`') per-worm stack with the edits of `layer` (the flat view)
    carried in (semiconv.editing.apply_label_edits), score, seed and `edited` from the layer's
    table; and one-line notes (worms erased to nothing)."""
    labels, stack = np.asarray(layer.data), stack_layer.data  # a time-lapse's stack: frames built when read
    multi = labels.ndim == 3
    if stack.ndim != labels.ndim + 1 or stack.shape[-2:] != labels.shape[-2:] or (multi and len(stack) != len(labels)):
        raise InputError(f"{layer.name!r} ({labels.shape}) no longer matches its worm stack ({stack.shape}): "
                         "it was resized or replaced; segment again")
    features = layer.features.drop(columns=["index"], errors="ignore")
    records = features.to_dict("records") if len(features) else []
    key = "track_id" if "track_id" in features else "label"
    planes, notes = [], []
    for t in frames if frames is not None else range(len(labels) if multi else 1):
        worms = np.asarray(stack[t] if multi else stack)
        worms = worms[worms.reshape(len(worms), -1).any(1)]
        ids = np.array([int(w.max()) for w in worms], dtype=np.int64)
        by_id = {int(r[key]): r for r in records if int(r.get("plane", 0)) == t and key in r}

        def column(name, ids=ids, by_id=by_id):
            return np.array([float(by_id.get(int(k), {}).get(name, np.nan)) for k in ids])

        edited = np.array([is_yes(by_id.get(int(k), {}).get("edited")) for k in ids], dtype=bool)
        seeds = np.stack([column("seed_row"), column("seed_col")], 1).reshape(-1, 2)
        plane = apply_label_edits(worms > 0, ids, column("score"), labels[t] if multi else labels, edited, seeds)
        planes.append(plane)
        where = f" in frame {t}" if multi else ""
        notes += [f"worm {k}{where} was erased to nothing: left out" for k in plane.removed]
    return planes, notes


def follow_selected_result(viewer, combo) -> None:
    """Point a widget's result choice (`combo`, instances-layer names) at the result whose layer
    (instances, stack, seeds...) is selected in the viewer."""
    active = viewer.layers.selection.active
    result = (active.metadata or {}).get("result") if active is not None else None
    if result is None:
        return
    for name in combo.choices:
        if (viewer.layers[name].metadata or {}).get("result") == result:
            if combo.value != name:
                combo.value = name
            return


def show_current_frame(viewer) -> None:
    """Hovering a worm of any stack result shows its row in the frame on screen
    (`show_frame_features` on every instances layer with a time axis)."""
    frame = int(viewer.dims.current_step[0])
    for layer in viewer.layers:
        if isinstance(layer, Labels) and layer.ndim == 3 and (layer.metadata or {}).get("role") == "instances":
            show_frame_features(layer, frame)
