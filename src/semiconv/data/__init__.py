"""Data: BBBC010 layout, generic annotated images, synthetic worms.

Names are imported on first use (PEP 562), so that `semiconv.data.instances` alone does not
load the BBBC010 parser or the synthetic generator.
"""

from importlib import import_module

_HOMES = {
    "VALIDATION_WELLS": "bbbc010", "Bbbc010Folder": "bbbc010", "Well": "bbbc010", "align_foreground": "bbbc010",
    "is_bbbc010_folder": "bbbc010",
    "AnnotatedImage": "generic", "load_pair": "generic", "read_annotations": "generic", "read_image": "generic",
    "boxes_from_masks": "instances", "labels_to_stack": "instances", "stack_to_labels": "instances",
    "SyntheticConfig": "synthetic", "generate": "synthetic", "generate_stack": "synthetic",
}

__all__ = list(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_HOMES[name]}", __name__), name)
