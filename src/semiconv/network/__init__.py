"""The semi-convolutional Mask R-CNN (torchvision extended)."""

from .build import SemiConvMaskRCNN, build_model

__all__ = ["SemiConvMaskRCNN", "build_model"]
