"""The semi-convolutional Mask R-CNN (torchvision extended)."""

from .build import SemiConvMaskRCNN, build_model, count_parameters

__all__ = ["SemiConvMaskRCNN", "build_model", "count_parameters"]
