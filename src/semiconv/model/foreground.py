"""A native-resolution foreground head: which pixels are worm, at full pixel precision.

Mask R-CNN's masks live on an M x M grid per box (about 7 px per cell on a long
worm), so their borders are blurred by a few pixels; a thin worm loses most of its
IoU at 0.9 that way. This head predicts the foreground at stride 1 from the input
image (two 3x3 convs) fused with the finest FPN level (stride 4, upsampled with
pixel centres aligned); each instance mask is then intersected with it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ForegroundHead(nn.Module):
    """images (B x C x H x W) + FPN level 0 (B x F x H/4 x W/4) -> foreground logits B x H x W."""

    def __init__(self, in_channels: int, fpn_channels: int, width: int = 16):
        super().__init__()
        self.image_branch = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.feature_branch = nn.Sequential(nn.Conv2d(fpn_channels, width, 1), nn.ReLU(inplace=True))
        self.fuse = nn.Sequential(
            nn.Conv2d(2 * width, width, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(width, 1, 1),
        )
        nn.init.constant_(self.fuse[-1].bias, -2.0)  # prior: worms are a small fraction of the pixels

    def forward(self, images: torch.Tensor, level0: torch.Tensor) -> torch.Tensor:
        coarse = F.interpolate(self.feature_branch(level0), size=images.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([self.image_branch(images), coarse], 1))[:, 0]


def foreground_loss(logits: torch.Tensor, targets: list[dict]) -> torch.Tensor:
    """Per-pixel BCE plus soft Dice (worms are a few % of the pixels) of logits (B x Hp x Wp,
    padded batch) against the union of each image's instance masks (padding is background)."""
    truth = torch.zeros_like(logits)
    for i, t in enumerate(targets):
        masks = t["masks"]
        if len(masks):
            h, w = masks.shape[-2:]
            truth[i, :h, :w] = masks.amax(0).to(logits.dtype)
    probability = torch.sigmoid(logits)
    dice = 1 - (2 * (probability * truth).sum() + 1) / (probability.sum() + truth.sum() + 1)
    return F.binary_cross_entropy_with_logits(logits, truth) + dice
