"""Build the semi-convolutional (or plain) Mask R-CNN from a ModelConfig; no weights downloaded."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from torchvision.models import resnet
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from ..config import ModelConfig
from .foreground import build_foreground_head, foreground_loss
from .norm import GroupNorm
from .pooling import AlignedMultiScaleRoIAlign
from .roi_heads import SemiConvRoIHeads
from .transform import NativeResolutionTransform


def _norm_layer(kind: str):
    if kind == "group":
        return lambda channels: GroupNorm(32 if channels % 32 == 0 else 8, channels)
    if kind == "batch":
        return nn.BatchNorm2d
    raise ValueError(f"norm must be 'group' or 'batch', not {kind!r}")


def build_backbone(config: ModelConfig) -> BackboneWithFPN:
    """ResNet (trainable norm, `in_channels` input) + FPN over the returned stages."""
    body = getattr(resnet, f"resnet{config.backbone_depth}")(weights=None, norm_layer=_norm_layer(config.norm))
    body.conv1 = nn.Conv2d(config.in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    stage_channels = [64, 128, 256, 512] if config.backbone_depth < 50 else [256, 512, 1024, 2048]
    return_layers = {f"layer{k}": str(i) for i, k in enumerate(config.returned_layers)}
    in_channels = [stage_channels[k - 1] for k in config.returned_layers]
    if max(config.returned_layers) < 4:
        body.layer4 = nn.Identity()  # unused: saves 8M parameters
    body.fc = nn.Identity()
    return BackboneWithFPN(body, return_layers, in_channels, config.fpn_channels, extra_blocks=LastLevelMaxPool())


BACKBONE_STAGES = (("conv1", "bn1"), ("layer1",), ("layer2",), ("layer3",), ("layer4",))  # the ResNet body, input first


def freeze_backbone_stages(model: nn.Module, stages: int) -> None:
    """Stop gradients in the first `stages` stages of the ResNet body (1: the stem; 2: the stem and
    layer1; ...): their backward is skipped, as torchvision's `trainable_layers` does."""
    frozen = tuple(f"backbone.body.{module}." for stage in BACKBONE_STAGES[:stages] for module in stage)
    for name, parameter in model.named_parameters():
        if name.startswith(frozen):
            parameter.requires_grad_(False)


class SemiConvMaskRCNN(MaskRCNN):
    """torchvision MaskRCNN whose forward also passes the padded batch size to the ROI heads
    and, with a foreground head, adds its loss (training) or its probability map (inference).

    `foreground_only = True` (training) runs the backbone without gradient and returns the
    foreground loss alone: a cheap stage that adds the head to an already trained detector.
    """

    foreground_only: bool = False
    foreground_loss_weight: float = 1.0
    foreground_images_per_batch: int = 0

    def forward(self, images, targets=None, carried_boxes=None):
        """torchvision's MaskRCNN.forward; `carried_boxes` (inference only): per image K x 4 boxes
        (x1, y1, x2, y2 in its pixels; a previous frame's worms) also given to the ROI heads
        (SemiConvRoIHeads.carried_detections)."""
        original_sizes = [tuple(img.shape[-2:]) for img in images]
        images, targets = self.transform(images, targets)
        if carried_boxes is not None:  # into the transformed images' pixels
            carried_boxes = [torch.as_tensor(b, dtype=torch.float32, device=images.tensors.device).reshape(-1, 4)
                             * torch.tensor([w / ow, h / oh, w / ow, h / oh], device=images.tensors.device)
                             for b, (h, w), (oh, ow) in zip(carried_boxes, images.image_sizes, original_sizes, strict=True)]
        if self.training and self.foreground_only:
            with torch.no_grad():
                features = self.backbone(images.tensors)
            return {"loss_foreground": self._foreground_loss(images, features, targets)}
        features = self.backbone(images.tensors)
        proposals, proposal_losses = self.rpn(images, features, targets)
        padded = tuple(images.tensors.shape[-2:])
        detections, detector_losses = self.roi_heads(features, proposals, images.image_sizes, targets, padded_size=padded,
                                                     carried=carried_boxes)
        if self.training:
            if self.foreground_head is not None:
                detector_losses["loss_foreground"] = self._foreground_loss(images, features, targets)
            return {**detector_losses, **proposal_losses}
        if self.foreground_head is not None:
            probability = torch.sigmoid(self.foreground_head(images.tensors, features["0"]))
            for r, p, (h, w) in zip(detections, probability, images.image_sizes, strict=True):
                r["foreground"] = p[:h, :w]
        return self.transform.postprocess(detections, images.image_sizes, original_sizes)

    def _foreground_loss(self, images, features, targets):
        """The foreground head's loss on the first `foreground_images_per_batch` images (0: all)."""
        n = self.foreground_images_per_batch or len(targets)
        logits = self.foreground_head(images.tensors[:n], features["0"][:n])
        return self.foreground_loss_weight * foreground_loss(logits, targets[:n])


def build_model(config: ModelConfig) -> SemiConvMaskRCNN:
    """The full detector. Parameters are randomly initialised (trained by this project)."""
    config.validate()
    backbone = build_backbone(config)
    names = [str(i) for i in range(len(config.returned_layers))]
    levels = len(names) + 1
    anchors = AnchorGenerator(tuple((s,) for s in config.anchor_sizes), (tuple(config.anchor_ratios),) * levels)
    C = config.fpn_channels
    norm = partial(GroupNorm, 8) if config.norm == "group" else nn.BatchNorm2d
    model = SemiConvMaskRCNN(
        backbone,
        num_classes=None,
        rpn_anchor_generator=anchors,
        rpn_head=RPNHead(C, anchors.num_anchors_per_location()[0]),
        rpn_pre_nms_top_n_train=config.rpn_pre_nms_train,
        rpn_post_nms_top_n_train=config.rpn_post_nms_train,
        rpn_pre_nms_top_n_test=config.rpn_pre_nms_test,
        rpn_post_nms_top_n_test=config.rpn_post_nms_test,
        rpn_batch_size_per_image=config.rpn_batch_per_image,
        box_roi_pool=AlignedMultiScaleRoIAlign(names, 7, 2),
        box_head=TwoMLPHead(C * 49, config.box_head_width),
        box_predictor=FastRCNNPredictor(config.box_head_width, 2),
        mask_roi_pool=AlignedMultiScaleRoIAlign(names, config.mask_resolution // 2, 2),
        mask_head=MaskRCNNHeads(C, list(config.mask_head_layers), 1, norm_layer=norm),
        mask_predictor=MaskRCNNPredictor(config.mask_head_layers[-1], config.mask_head_layers[-1], 2),
    )
    old = model.roi_heads
    model.roi_heads = SemiConvRoIHeads(
        box_roi_pool=old.box_roi_pool, box_head=old.box_head, box_predictor=old.box_predictor,
        fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=config.box_batch_per_image,
        positive_fraction=0.25, bbox_reg_weights=None,
        score_thresh=0.05, nms_thresh=config.box_nms_threshold, detections_per_img=config.max_detections,
        mask_roi_pool=old.mask_roi_pool, mask_head=old.mask_head, mask_predictor=old.mask_predictor,
        config=config, fpn_channels=C, featmap_names=names,
    )
    model.transform = NativeResolutionTransform(config.in_channels, config.image_scale)
    model.foreground_head = (
        build_foreground_head(config.foreground_arch, config.in_channels, C, config.foreground_width,
                              config.foreground_full_res_norm)
        if config.foreground_head else None
    )
    model.foreground_loss_weight = config.foreground_loss_weight
    model.foreground_images_per_batch = config.foreground_images_per_batch
    return model
