"""Data: BBBC010 layout, generic annotated images, synthetic worms."""

from .bbbc010 import VALIDATION_WELLS, Bbbc010Folder, Well, align_foreground, is_bbbc010_folder
from .generic import AnnotatedImage, load_pair, read_annotations, read_image
from .instances import boxes_from_masks, labels_to_stack, stack_to_labels
from .synthetic import SyntheticConfig, generate, generate_stack

__all__ = [
    "VALIDATION_WELLS", "Bbbc010Folder", "Well", "align_foreground", "is_bbbc010_folder",
    "AnnotatedImage", "load_pair", "read_annotations", "read_image",
    "boxes_from_masks", "labels_to_stack", "stack_to_labels",
    "SyntheticConfig", "generate", "generate_stack",
]
