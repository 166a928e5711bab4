"""Image transform at native resolution (no silent upscaling to 800 px) with aligned mask pasting."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from .masks import paste_masks_aligned


class NativeResolutionTransform(GeneralizedRCNNTransform):
    """Batches images padded to a multiple of 32; resizes only by the configured `scale`.

    Inputs are expected already intensity-normalised (mean 0 / std 1 here).
    """

    def __init__(self, in_channels: int, scale: float = 1.0):
        super().__init__(min_size=1, max_size=1, image_mean=[0.0] * in_channels, image_std=[1.0] * in_channels, size_divisible=32)
        self.scale = float(scale)

    def resize(self, image, target=None):
        if self.scale == 1.0:
            return image, target
        image = F.interpolate(image[None], scale_factor=self.scale, mode="bilinear", align_corners=False, recompute_scale_factor=False)[0]
        if target is not None:
            target = dict(target)
            target["boxes"] = target["boxes"] * self.scale
            if "masks" in target:
                masks = target["masks"][:, None].float()
                target["masks"] = (F.interpolate(masks, size=image.shape[-2:], mode="bilinear", align_corners=False)[:, 0] >= 0.5).to(torch.uint8)
        return image, target

    def postprocess(self, result, image_shapes, original_image_sizes):
        if self.training:
            return result
        for r, shape, original in zip(result, image_shapes, original_image_sizes, strict=True):
            ratio_h, ratio_w = original[0] / shape[0], original[1] / shape[1]
            boxes = r["boxes"] * torch.tensor([ratio_w, ratio_h, ratio_w, ratio_h], device=r["boxes"].device)
            r["boxes"] = boxes
            if "seed_positions" in r:
                r["seed_positions"] = r["seed_positions"] * torch.tensor([ratio_w, ratio_h], device=boxes.device)
            if "foreground" in r and tuple(r["foreground"].shape) != tuple(original):
                r["foreground"] = F.interpolate(r["foreground"][None, None], size=tuple(original), mode="bilinear", align_corners=False)[0, 0]
            if "masks" in r:
                r["masks"] = paste_masks_aligned(r["masks"][:, 0], boxes, tuple(original))[:, None]
        return result
