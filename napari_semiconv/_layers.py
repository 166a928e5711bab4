"""From core data to napari layer-data tuples ``(data, kwargs, layer_type)``; no viewer needed."""

from __future__ import annotations

import numpy as np

from semiconv.data.instances import stack_to_labels


def image_layer(image: np.ndarray, name: str, **kwargs) -> tuple:
    return (image, {"name": name, **kwargs}, "image")


def instance_layers(masks: np.ndarray, name: str, scores=None, visible_stack: bool = False) -> list[tuple]:
    """A Labels layer (overlaps resolved by score) and the overlap-keeping stack (one plane per worm)."""
    masks = np.asarray(masks, dtype=bool)
    labels = stack_to_labels(masks, scores)
    ids = np.arange(1, len(masks) + 1)
    features = {"label": ids, "area": masks.reshape(len(masks), -1).sum(1)}
    if scores is not None:
        features["score"] = np.asarray(scores, dtype=float)
    stack = masks.astype(np.uint8) * ids[:, None, None].astype(np.uint8) if len(masks) < 256 else masks.astype(np.uint16) * ids[:, None, None]
    return [
        (labels, {"name": f"{name} instances", "features": features}, "labels"),
        (stack, {"name": f"{name} instance stack", "visible": visible_stack, "features": features}, "labels"),
    ]
