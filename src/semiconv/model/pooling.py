"""Multi-scale RoIAlign with pixel-aligned sampling (aligned=True).

torchvision's MultiScaleRoIAlign samples half a feature-map pixel off; this
subclass keeps its level mapping and scale inference but samples aligned,
consistently with the aligned mask targets and pasting.
"""

from __future__ import annotations

import torch
from torchvision.ops import MultiScaleRoIAlign, roi_align

try:  # private torchvision helpers (tested with torchvision 0.19-0.29; tests/test_model.py checks them)
    from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales
except ImportError as exc:  # pragma: no cover - only on a torchvision that moved them
    import torchvision

    raise ImportError(f"torchvision {torchvision.__version__} no longer has the MultiScaleRoIAlign helpers "
                      f"semiconv.model.pooling uses ({exc}); install torchvision<0.30 or update pooling.py") from exc


class AlignedMultiScaleRoIAlign(MultiScaleRoIAlign):
    """Same interface as MultiScaleRoIAlign; output R x C x S x S."""

    def forward(self, x, boxes, image_shapes):
        features = _filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(features, image_shapes, self.canonical_scale, self.canonical_level)
        rois = _convert_to_roi_format(boxes)
        size = self.output_size
        if len(features) == 1:
            return roi_align(features[0], rois, size, self.scales[0], self.sampling_ratio, aligned=True)
        levels = self.map_levels(boxes)
        result = features[0].new_zeros((len(rois), features[0].shape[1]) + tuple(size))
        for level, (feature, scale) in enumerate(zip(features, self.scales, strict=True)):
            idx = torch.where(levels == level)[0]
            if idx.numel():
                result[idx] = roi_align(feature, rois[idx], size, scale, self.sampling_ratio, aligned=True).to(result.dtype)
        return result
