"""A native-resolution foreground head: which pixels are worm, at full pixel precision.

Mask R-CNN's masks live on an M x M grid per box (about 7 px per cell on a long
worm), so their borders are blurred by a few pixels; a thin worm loses most of its
IoU at 0.9 that way. This head predicts the foreground at stride 1 from the input
image (two 3x3 convs) fused with the finest FPN level (stride 4, upsampled with
pixel centres aligned); each instance mask is then intersected with it.

Two architectures (`ModelConfig.foreground_arch`): "shallow" (two 3x3 convs at stride 1
fused with FPN level 0: the first bundled model's) and "unet" (a small U-Net on the image,
strides 1/2/4, whose bottleneck is fused with FPN level 0: more context at the border).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .norm import GroupNorm


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


def _block(cin: int, cout: int, norm: bool = True) -> nn.Sequential:
    """Two 3x3 convs, each with GroupNorm (or, norm=False, a bias) and ReLU (resolution kept)."""
    def normalise(channels):
        return GroupNorm(4, channels) if norm else nn.Identity()

    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=not norm), normalise(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=not norm), normalise(cout), nn.ReLU(inplace=True),
    )


def _block_on_parts(block: nn.Sequential, parts: list[torch.Tensor]) -> torch.Tensor:
    """`block(torch.cat(parts, 1))` without the concatenation: the first convolution's weight is
    split by input channel and the partial results summed (the same numbers; the copy of a
    full-resolution channels-last tensor costs as much as a convolution on this CPU)."""
    first = block[0]
    out, start = None, 0
    for part in parts:  # the bias goes with the first part (added outside the convolution, a bf16
        stop = start + part.shape[1]  # result would be promoted to float32 at full resolution)
        y = F.conv2d(part, first.weight[:, start:stop], first.bias if out is None else None, first.stride, first.padding)
        out = y if out is None else out.add_(y)
        start = stop
    return block[1:](out)


class ForegroundUNet(nn.Module):
    """images (B x C x H x W, H and W multiples of 4) + FPN level 0 (B x F x H/4 x W/4) ->
    foreground logits B x H x W. Encoder at strides 1, 2, 4 (widths w, 2w, 4w); at stride 4
    the FPN features join; the decoder goes back to stride 1 through skip connections.
    full_res_norm=False: the two stride-1 blocks have no GroupNorm (a bias instead); they are
    the costliest part of a CPU training step (323 -> 193 ms for a forward and backward pass of
    4 x 320 x 320, bf16, 2 threads)."""

    def __init__(self, in_channels: int, fpn_channels: int, width: int = 16, full_res_norm: bool = True):
        super().__init__()
        w = width
        self.enc1 = _block(in_channels, w, full_res_norm)
        self.enc2 = _block(w, 2 * w)
        self.features = nn.Sequential(nn.Conv2d(fpn_channels, 2 * w, 1), nn.ReLU(inplace=True))
        self.enc3 = _block(4 * w, 4 * w)
        self.dec2 = _block(4 * w + 2 * w, 2 * w)
        self.dec1 = _block(2 * w + w, w, full_res_norm)
        self.out = nn.Conv2d(w, 1, 1)
        nn.init.constant_(self.out.bias, -2.0)
        # channels-last convolutions run about twice as fast on the CPU at these narrow widths
        self.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor, level0: torch.Tensor) -> torch.Tensor:
        images = images.contiguous(memory_format=torch.channels_last)
        level0 = level0.contiguous(memory_format=torch.channels_last)
        e1 = self.enc1(images)
        e2 = self.enc2(F.max_pool2d(e1, 2, ceil_mode=True))
        pooled = F.max_pool2d(e2, 2, ceil_mode=True)
        features = self.features(level0)
        if features.shape[-2:] != pooled.shape[-2:]:
            features = F.interpolate(features, size=pooled.shape[-2:], mode="bilinear", align_corners=False)
        e3 = _block_on_parts(self.enc3, [pooled, features])
        d2 = _block_on_parts(self.dec2, [F.interpolate(e3, size=e2.shape[-2:], mode="bilinear", align_corners=False), e2])
        d1 = _block_on_parts(self.dec1, [F.interpolate(d2, size=e1.shape[-2:], mode="bilinear", align_corners=False), e1])
        return self.out(d1)[:, 0]


FOREGROUND_ARCHITECTURES = {"shallow": ForegroundHead, "unet": ForegroundUNet}


def build_foreground_head(arch: str, in_channels: int, fpn_channels: int, width: int, full_res_norm: bool = True) -> nn.Module:
    """The foreground head named by `arch` ("shallow" or "unet"; `full_res_norm` is the U-Net's)."""
    if arch == "unet":
        return ForegroundUNet(in_channels, fpn_channels, width, full_res_norm)
    return FOREGROUND_ARCHITECTURES[arch](in_channels, fpn_channels, width)


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
