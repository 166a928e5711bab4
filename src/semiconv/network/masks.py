"""Pixel-aligned mask targets and pasting, so thin worms survive the round trip.

Convention: pixel (r, c) covers [c, c+1] x [r, r+1] in continuous coordinates;
boxes are (x1, y1, x2, y2) in those coordinates. An M x M mask over a box has
cell j centred at x1 + (j + 0.5) * (x2 - x1) / M.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align


def project_masks_aligned(gt_masks: torch.Tensor, boxes: torch.Tensor, matched_idxs: torch.Tensor, M: int) -> torch.Tensor:
    """Crop-and-resize ground-truth masks (G x H x W) into boxes (R x 4) -> R x M x M in [0, 1].

    Uses RoIAlign with aligned=True, unlike torchvision's project_masks_on_boxes.
    """
    matched_idxs = matched_idxs.to(boxes)
    rois = torch.cat([matched_idxs[:, None], boxes], dim=1)
    return roi_align(gt_masks[:, None].to(rois), rois, (M, M), spatial_scale=1.0, sampling_ratio=2, aligned=True)[:, 0]


def roi_sample_coordinates(boxes: torch.Tensor, M: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Continuous (x, y) of the M x M bin centres of each box: two R x M x M tensors."""
    steps = (torch.arange(M, device=boxes.device, dtype=boxes.dtype) + 0.5) / M
    x1, y1, x2, y2 = boxes.unbind(1)
    xs = x1[:, None] + (x2 - x1)[:, None] * steps[None]  # R x M
    ys = y1[:, None] + (y2 - y1)[:, None] * steps[None]
    return xs[:, None, :].expand(-1, M, -1), ys[:, :, None].expand(-1, -1, M)


def paste_masks_aligned(masks: torch.Tensor, boxes: torch.Tensor, image_shape: tuple[int, int]) -> torch.Tensor:
    """Paste R x M x M mask probabilities into R x H x W images, sampling at pixel centres.

    Each pixel whose centre lies inside the box takes the bilinear value of the
    M x M map at that point; pixels outside the box are 0.
    """
    H, W = image_shape
    out = masks.new_zeros((len(masks), H, W))
    for i, (mask, box) in enumerate(zip(masks, boxes, strict=True)):
        x1, y1, x2, y2 = (float(v) for v in box)
        # pixels whose centre c + 0.5 lies in [x1, x2)
        c0, c1 = max(math.ceil(x1 - 0.5), 0), min(math.ceil(x2 - 0.5), W)
        r0, r1 = max(math.ceil(y1 - 0.5), 0), min(math.ceil(y2 - 0.5), H)
        if c1 <= c0 or r1 <= r0 or x2 <= x1 or y2 <= y1:
            continue
        cx = torch.arange(c0, c1, device=masks.device, dtype=masks.dtype) + 0.5
        cy = torch.arange(r0, r1, device=masks.device, dtype=masks.dtype) + 0.5
        gx = 2 * (cx - x1) / (x2 - x1) - 1
        gy = 2 * (cy - y1) / (y2 - y1) - 1
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None]
        out[i, r0:r1, c0:c1] = F.grid_sample(mask[None, None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0, 0]
    return out


def round_trip_masks(masks: torch.Tensor, boxes: torch.Tensor, resolution: int, method: str = "aligned") -> torch.Tensor:
    """Masks (N x H x W float) cut to their boxes (N x 4) at resolution x resolution and pasted
    back (N x H x W bool, at 0.5): what the mask representation alone loses. method 'aligned'
    (this project's targets and pasting) or 'torchvision' (project_masks_on_boxes and
    paste_masks_in_image)."""
    index = torch.arange(len(masks))
    if method == "aligned":
        small = project_masks_aligned(masks, boxes, index, resolution)
        return paste_masks_aligned(small, boxes, masks.shape[1:]) >= 0.5
    if method == "torchvision":
        from torchvision.models.detection.roi_heads import (
            paste_masks_in_image,
            project_masks_on_boxes,
        )

        small = project_masks_on_boxes(masks, boxes, index, resolution)
        return paste_masks_in_image(small[:, None], boxes, masks.shape[1:])[:, 0] >= 0.5
    raise ValueError(f"method must be 'aligned' or 'torchvision', not {method!r}")
