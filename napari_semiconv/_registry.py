"""Open Segment widgets, so a newly fine-tuned model shows up in their model lists at once."""

from __future__ import annotations

import weakref

_SEGMENT_WIDGETS: weakref.WeakSet = weakref.WeakSet()


def register(widget) -> None:
    _SEGMENT_WIDGETS.add(widget)


def models_changed() -> None:
    for widget in list(_SEGMENT_WIDGETS):
        widget.refresh_models()
