"""Multi-scale RoIAlign with pixel-aligned sampling (aligned=True), and a fast CPU backward.

torchvision's MultiScaleRoIAlign samples half a feature-map pixel off; this
subclass keeps its level mapping and scale inference but samples aligned,
consistently with the aligned mask targets and pasting.

Where gradients flow on the CPU (training), torchvision's roi_align backward runs one
serial loop (a third of a bf16 training step, 2026-11-30); `roi_align_trainable` computes
the same numbers (fp32 rounding apart) as weighted gathers whose backward torch
vectorises: per output cell, the 2g x 2g feature pixels its g x g bilinear samples touch,
with their averaged weights (torchvision's own rules: samples beyond one pixel outside the
map are 0, others clamp to the border).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import MultiScaleRoIAlign, roi_align

try:  # private torchvision helpers (tested with torchvision 0.19-0.29; tests/test_model.py checks them)
    from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales
except ImportError as exc:  # pragma: no cover - only on a torchvision that moved them
    import torchvision

    raise ImportError(f"torchvision {torchvision.__version__} no longer has the MultiScaleRoIAlign helpers "
                      f"semiconv.network.pooling uses ({exc}); install torchvision<0.30 or update pooling.py") from exc

NARROW_CHANNELS = 32  # below this many channels the separable matrix form is faster than gathers


def _axis_taps(start: torch.Tensor, bin_size: torch.Tensor, bins: int, grid: int, length: int):
    """Along one axis of a map `length` cells long, for R regions of `bins` bins with `grid`
    samples each: the cells the samples' linear interpolation reads (R x bins x 2*grid) and
    their weights (averaged over the bin's samples; 0 for samples beyond one cell outside)."""
    k = torch.arange(bins, dtype=start.dtype, device=start.device)[:, None] \
        + (torch.arange(grid, dtype=start.dtype, device=start.device)[None, :] + 0.5) / grid
    pos = start[:, None, None] + k[None] * bin_size[:, None, None]  # R x bins x grid
    valid = ((pos >= -1.0) & (pos <= length)).to(pos.dtype)
    pos = pos.clamp(min=0)
    low = pos.floor().long()
    at_end = low >= length - 1
    low = low.clamp(max=length - 1)
    high = torch.where(at_end, low, low + 1)
    frac = torch.where(at_end, torch.zeros_like(pos), pos - low)
    cells = torch.cat([low, high], 2)
    weights = torch.cat([(1 - frac) * valid, frac * valid], 2) / grid
    return cells, weights


def roi_align_trainable(feature: torch.Tensor, rois: torch.Tensor, output_size: int, spatial_scale: float,
                        sampling_ratio: int) -> torch.Tensor:
    """torchvision.ops.roi_align(feature, rois, output_size, spatial_scale, sampling_ratio,
    aligned=True) in float32, with a fast backward. feature: B x C x H x W; rois: R x 5
    (batch index, x1, y1, x2, y2 in image pixels); sampling_ratio > 0. Returns R x C x S x S."""
    if sampling_ratio <= 0:
        raise ValueError("roi_align_trainable needs a fixed sampling_ratio > 0")
    B, C, H, W = feature.shape
    R, S = len(rois), output_size
    box = rois[:, 1:].float() * spatial_scale - 0.5
    rows, row_w = _axis_taps(box[:, 1], (box[:, 3] - box[:, 1]) / S, S, sampling_ratio, H)  # R x S x T
    cols, col_w = _axis_taps(box[:, 0], (box[:, 2] - box[:, 0]) / S, S, sampling_ratio, W)
    image = rois[:, 0].long()
    feature = feature.float()
    if C < NARROW_CHANNELS:  # separable: out_r = A_y,r @ F_b @ A_x,r^T, dense over the map
        Ay = feature.new_zeros((R, S, H)).scatter_add_(2, rows, row_w)
        Ax = feature.new_zeros((R, S, W)).scatter_add_(2, cols, col_w)
        out = feature.new_zeros((R, C, S, S))
        for b in range(B):
            idx = torch.where(image == b)[0]
            if len(idx):
                along_x = torch.einsum("chw,rjw->chrj", feature[b], Ax[idx])
                out = out.index_copy(0, idx, torch.einsum("rih,chrj->rcij", Ay[idx], along_x))
        return out
    # gathers: each output cell sums the T x T feature pixels of its samples (channels-last rows)
    T = rows.shape[-1]
    flat = feature.permute(0, 2, 3, 1).reshape(B * H * W, C)
    index = ((image[:, None, None, None, None] * H + rows[:, :, None, :, None]) * W
             + cols[:, None, :, None, :]).reshape(R * S * S, T * T)
    weight = (row_w[:, :, None, :, None] * col_w[:, None, :, None, :]).reshape(R * S * S, T * T)
    out = F.embedding_bag(index, flat, per_sample_weights=weight, mode="sum")
    return out.reshape(R, S, S, C).permute(0, 3, 1, 2)


def aligned_roi_align(feature: torch.Tensor, rois: torch.Tensor, output_size: int, spatial_scale: float,
                      sampling_ratio: int) -> torch.Tensor:
    """roi_align with aligned=True; `roi_align_trainable` where gradients flow on the CPU."""
    if feature.device.type == "cpu" and feature.requires_grad and torch.is_grad_enabled() and sampling_ratio > 0:
        return roi_align_trainable(feature, rois, output_size, spatial_scale, sampling_ratio)
    return roi_align(feature, rois, output_size, spatial_scale, sampling_ratio, aligned=True)


class AlignedMultiScaleRoIAlign(MultiScaleRoIAlign):
    """Same interface as MultiScaleRoIAlign; output R x C x S x S."""

    def forward(self, x, boxes, image_shapes):
        features = _filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(features, image_shapes, self.canonical_scale, self.canonical_level)
        rois = _convert_to_roi_format(boxes)
        size = self.output_size[0]
        if len(features) == 1:
            return aligned_roi_align(features[0], rois, size, self.scales[0], self.sampling_ratio)
        levels = self.map_levels(boxes)
        pooled = [None] * len(features)
        for level, (feature, scale) in enumerate(zip(features, self.scales, strict=True)):
            idx = torch.where(levels == level)[0]
            if idx.numel():
                pooled[level] = (idx, aligned_roi_align(feature, rois[idx], size, scale, self.sampling_ratio))
        dtype = next((p[1].dtype for p in pooled if p is not None), features[0].dtype)
        result = features[0].new_zeros((len(rois), features[0].shape[1], size, size), dtype=dtype)
        for item in pooled:
            if item is not None:
                result = result.index_copy(0, item[0], item[1].to(dtype))
        return result
