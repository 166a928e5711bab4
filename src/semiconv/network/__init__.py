"""The semi-convolutional Mask R-CNN network (torchvision's Mask R-CNN extended by subclassing).

`build_model` and `SemiConvMaskRCNN` are imported on first use (PEP 562), so that one module of
the package (e.g. `network.embedding` for post-processing) does not load the whole network.
"""

from importlib import import_module

__all__ = ["BACKBONE_STAGES", "SemiConvMaskRCNN", "build_model", "freeze_backbone_stages"]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(".build", __name__), name)
