"""The settings of linking worms across frames and of the movement calls (semiconv.tracking);
a module of its own so that the CLI can show their defaults without importing the tracking code."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError


@dataclass(frozen=True)
class TrackingSettings:
    """max_gap: frames a worm may be missing and keep its identity; min_iou: the lowest IoU of two
    grown masks that can link them; tolerance_px: masks grown by this (pixels) before the IoU;
    still_px: speed (pixels per frame) below which a frame step is still; still_frames: still
    frame steps up to the last frame that call a worm dead by movement; carry_boxes: each frame's
    worm boxes, grown by carry_margin_px pixels, are given to the next frame's segmentation
    (semiconv.tracking.carried_boxes); join_fragments: two worms of a frame that are pieces of one
    worm of the frame before are joined into one (semiconv.tracking.fragment_groups: they overlap by
    >= fragment_overlap of the smaller one's area, >= fragment_on_previous of the smaller one lies on
    that worm, which is worm-sized, and their union is at most fragment_area_ratio times its area;
    worm-sized: at most fragment_area_ratio times the frame before's median worm area)."""

    max_gap: int = 5
    min_iou: float = 0.1
    tolerance_px: int = 3
    still_px: float = 1.5
    still_frames: int = 3
    carry_boxes: bool = True
    carry_margin_px: int = 8
    join_fragments: bool = True
    fragment_overlap: float = 0.05
    fragment_on_previous: float = 0.3
    fragment_area_ratio: float = 1.3

    def __post_init__(self):
        if self.max_gap < 0 or self.still_frames < 1 or self.tolerance_px < 0 or self.carry_margin_px < 0:
            raise InputError("tracking: max_gap, tolerance_px and carry_margin_px must be >= 0, still_frames >= 1")
        if not (0 <= self.fragment_overlap <= 1 and 0 <= self.fragment_on_previous <= 1 and self.fragment_area_ratio >= 1):
            raise InputError("tracking: fragment_overlap and fragment_on_previous must be in [0, 1], fragment_area_ratio >= 1")
        if not 0 < self.min_iou < 1:
            raise InputError(f"tracking: min_iou must be between 0 and 1, not {self.min_iou}")
