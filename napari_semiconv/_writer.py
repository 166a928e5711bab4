"""napari writers: uint16 label TIFF, and an overlap-preserving instance stack TIFF (N x H x W).

Writes are atomic; an existing file is never replaced (napari asks the user first).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semiconv.data.instances import labels_to_stack
from semiconv.io import write_label_image, write_tiff


def _target(path: str) -> Path:
    p = Path(path)
    return p if p.suffix.lower() in (".tif", ".tiff") else p.with_suffix(".tif")


def is_time_lapse(data: np.ndarray, meta: dict) -> bool:
    """A 3-D Labels layer whose first axis is time: named so (t, time, frame), or a time-lapse's
    result (role "instances": a single image's result is 2-D)."""
    names = tuple(meta.get("axis_labels") or ())
    first = str(names[0]).lower() if len(names) == data.ndim else ""
    role = (meta.get("metadata") or {}).get("role")
    return data.ndim == 3 and (first in ("t", "time", "frame") or role == "instances")


def write_labels(path: str, data, meta: dict) -> list[str]:
    """Write a Labels layer as uint16 TIFF (any leading axes kept; a time-lapse's T x H x W as
    ImageJ time frames)."""
    data = np.asarray(data)
    target = _target(path)
    write_label_image(target, data, time_lapse=is_time_lapse(data, meta), overwrite=True)
    return [str(target)]


def write_instance_stack(path: str, data, meta: dict) -> list[str]:
    """Write a Labels layer as an N x H x W uint8 stack, one plane per label.

    A layer that is already a per-worm stack (3-D, each plane holding one id)
    is written as it is, so overlaps survive.
    """
    data = np.asarray(data)
    if data.ndim == 3 and all(len(np.unique(plane[plane > 0])) <= 1 for plane in data):
        stack = data > 0
    elif data.ndim == 2:
        stack = labels_to_stack(data)
    else:
        raise ValueError(f"cannot write a {data.ndim}-D labels layer as an instance stack")
    target = _target(path)
    write_tiff(target, stack.astype(np.uint8), overwrite=True)
    return [str(target)]
