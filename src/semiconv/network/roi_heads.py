"""Semi-convolutional ROI heads: torchvision's RoIHeads, extended (not forked).

The box branch, proposal sampling and losses are the parent's. The mask
branch is replaced: mask logits s over each region are refined by the steered
bilateral kernel, s_hat = s + log K(Psi_seed, Psi_u), where the seed is the
softmax(s)-weighted mean of the region's embeddings Psi = u_hat + Phi.
With head="plain" the same class runs plain Mask R-CNN (s_hat = s), with the
same aligned targets and pasting, for a fair ablation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss
from torchvision.ops import boxes as box_ops

from ..config import ModelConfig
from .embedding import (
    EmbeddingHead,
    SteeredKernel,
    add_coordinates,
    attraction_loss,
    dense_coordinates,
    seed_from_logits,
)
from .masks import project_masks_aligned, roi_sample_coordinates
from .pooling import AlignedMultiScaleRoIAlign

EMBEDDING_LEVEL = "0"  # the finest FPN level (stride 4) carries the dense embedding output


class SemiConvRoIHeads(RoIHeads):
    """RoIHeads with a semi-convolutional (or plain) mask branch and pixel-aligned targets."""

    #: with carried boxes (inference), a detection of the detector's own whose box overlaps a
    #: carried worm's box above this IoU is that worm found twice: dropped before the mask branch
    #: (Tracktor's rule for new detections; tracking then costs no more network time than without)
    carried_duplicate_iou: float = 0.9

    def __init__(self, *args, config: ModelConfig, fpn_channels: int, featmap_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.config = config
        self.semiconv = config.head == "semiconv"
        if self.semiconv:
            self.embedding_head = EmbeddingHead(fpn_channels, config.embedding_dim, config.embedding_hidden, config.embedding_grad_scale)
            self.embedding_pool = AlignedMultiScaleRoIAlign(featmap_names, config.mask_resolution, 2)
            self.kernel = SteeredKernel(config.init_sigma)
        self.featmap_names = list(featmap_names)

    # -- embedding ---------------------------------------------------------------------------
    def _embeddings(self, features):
        return self.embedding_head({k: features[k] for k in self.featmap_names})

    def dense_psi(self, phi: torch.Tensor, padded_size: tuple[int, int]) -> torch.Tensor:
        """Psi on the stride-4 grid of one image: D x h x w (cells covering the padded image)."""
        h, w = phi.shape[-2:]
        stride = padded_size[0] / h
        xs, ys = dense_coordinates(h, w, stride, phi.device, phi.dtype)
        return add_coordinates(phi, xs, ys, self.config.coord_scale)

    def _refine(self, phi_levels, s, boxes, image_shapes):
        """s (R x M x M) -> refined s_hat, log K, seed embeddings (R x D), seed positions (R x 2)."""
        M = s.shape[-1]
        box_cat = torch.cat(boxes)
        xs, ys = roi_sample_coordinates(box_cat, M)
        phi = self.embedding_pool(phi_levels, boxes, image_shapes).float()
        psi = add_coordinates(phi, xs, ys, self.config.coord_scale)
        seed, position = seed_from_logits(s, psi, xs, ys)
        log_k = self.kernel.log_affinity(seed, psi)
        return s + log_k, log_k, seed, position

    def mask_samples(self, positive: torch.Tensor) -> torch.Tensor:
        """The positive RoIs (indices) of one image the mask branch trains on: all, or a random
        `mask_rois_per_image` of them."""
        cap = self.config.mask_rois_per_image
        if cap and len(positive) > cap:
            positive = positive[torch.randperm(len(positive), device=positive.device)[:cap]]
        return positive

    # -- forward -----------------------------------------------------------------------------
    def carried_detections(self, class_logits, box_regression, carried, image_shapes):
        """Boxes and scores of carried boxes (inference): each of `carried` (per image K x 4, a
        previous frame's worm boxes given as proposals) regressed and scored by the box head, as
        Tracktor (Bergmann et al. 2019) does, with no box NMS among them (two crossing worms have
        nearly the same box); those scoring under score_thresh or of no size are dropped. Returns
        per image (boxes K' x 4, scores K')."""
        boxes = self.box_coder.decode(box_regression, carried)[:, -1]  # the worm class
        scores = F.softmax(class_logits, -1)[:, -1]
        out = []
        for b, sc, shape in zip(boxes.split([len(c) for c in carried]), scores.split([len(c) for c in carried]),
                                image_shapes, strict=True):
            b = box_ops.clip_boxes_to_image(b, shape)
            keep = torch.where(sc > self.score_thresh)[0]
            keep = keep[box_ops.remove_small_boxes(b[keep], 1e-2)]
            out.append((b[keep], sc[keep]))
        return out

    def with_carried(self, boxes, scores, labels, carried_boxes, carried_scores):
        """One image's detections (boxes N x 4, scores N, labels N) and its carried ones (K x 4, K)
        as one list, highest score first, less the detections whose box overlaps a carried box
        above `carried_duplicate_iou`; returns boxes, scores, labels and the bool carried flags."""
        if len(carried_boxes) and len(boxes):
            fresh = box_ops.box_iou(boxes, carried_boxes).max(1).values <= self.carried_duplicate_iou
            boxes, scores, labels = boxes[fresh], scores[fresh], labels[fresh]
        flags = torch.arange(len(boxes) + len(carried_boxes), device=boxes.device) >= len(boxes)
        order = torch.argsort(torch.cat([scores, carried_scores]), descending=True, stable=True)
        labels = torch.cat([labels, torch.ones(len(carried_boxes), dtype=labels.dtype, device=labels.device)])
        return torch.cat([boxes, carried_boxes])[order], torch.cat([scores, carried_scores])[order], labels[order], flags[order]

    def forward(self, features, proposals, image_shapes, targets=None, padded_size=None, carried=None):
        """torchvision's RoIHeads.forward with the semi-convolutional mask branch. `carried`
        (inference only): per image K x 4 boxes (a previous frame's worms) scored, regressed and
        kept apart from box NMS (`carried_detections`), the detector's own detections of the same
        worms dropped (`carried_duplicate_iou`); each result then has a bool `carried`."""
        proposals = [p.float() for p in proposals]  # bf16 under autocast: box coordinates stay exact
        if self.training:
            if targets is None:
                raise ValueError("targets are required in training mode")
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
            carried = None
        counts = [len(c) for c in carried] if carried is not None else [0] * len(proposals)
        if any(counts):
            proposals = [torch.cat([p, c.to(p)]) for p, c in zip(proposals, carried, strict=True)]
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = (t.float() for t in self.box_predictor(box_features))  # boxes decoded in float32

        losses, result = {}, []
        if self.training:
            loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
            losses = {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
            mask_boxes, pos_matched = [], []
            for props, lab, idx in zip(proposals, labels, matched_idxs, strict=True):
                pos = self.mask_samples(torch.where(lab > 0)[0])
                mask_boxes.append(props[pos])
                pos_matched.append(idx[pos])
        else:
            theirs = torch.cat([torch.arange(len(p), device=class_logits.device) >= len(p) - k
                                for p, k in zip(proposals, counts, strict=True)])
            boxes, scores, det_labels = self.postprocess_detections(class_logits[~theirs], box_regression[~theirs],
                                                                     [p[:len(p) - k] for p, k in zip(proposals, counts, strict=True)],
                                                                     image_shapes)
            flags = [torch.zeros(len(b), dtype=torch.bool, device=b.device) for b in boxes]
            if any(counts):
                found = self.carried_detections(class_logits[theirs], box_regression[theirs],
                                                [p[len(p) - k:] for p, k in zip(proposals, counts, strict=True)], image_shapes)
                for i, (b, sc) in enumerate(found):
                    boxes[i], scores[i], det_labels[i], flags[i] = self.with_carried(boxes[i], scores[i], det_labels[i], b, sc)
            result = [{"boxes": b, "labels": lab, "scores": sc, "carried": f}
                      for b, sc, lab, f in zip(boxes, scores, det_labels, flags, strict=True)]
            mask_boxes = boxes

        mask_logits = self.mask_predictor(self.mask_head(self.mask_roi_pool(features, mask_boxes, image_shapes)))
        s = (mask_logits[:, 1] if mask_logits.shape[1] > 1 else mask_logits[:, 0]).float()
        phi_levels = self._embeddings(features) if self.semiconv else None
        # the embedding's geometry (pixel coordinates / coord_scale, seeds, distances) in float32
        with torch.autocast(s.device.type, enabled=False):
            if self.semiconv and s.shape[0] > 0:
                s_hat, log_k, seed, position = self._refine(phi_levels, s, mask_boxes, image_shapes)
            else:
                s_hat, log_k = s, None
                seed = s.new_zeros((s.shape[0], self.config.embedding_dim))
                position = s.new_zeros((s.shape[0], 2))
            if self.training:
                losses.update(self._mask_losses(s_hat, log_k, mask_boxes, pos_matched, targets, phi_levels, padded_size))
                return result, losses

        counts = [len(b) for b in mask_boxes]
        for r, s0, sh, sd, pos in zip(result, s.split(counts), s_hat.split(counts), seed.split(counts), position.split(counts), strict=True):
            r["mask_logits_unrefined"] = s0
            r["masks"] = torch.sigmoid(sh)[:, None]
            r["seed_embeddings"] = sd
            r["seed_positions"] = pos
        if self.semiconv:
            for i, r in enumerate(result):
                r["embedding_stride4"] = self.dense_psi(phi_levels[EMBEDDING_LEVEL][i], padded_size)
                r["sigma"] = self.kernel.sigma.detach().reshape(1)
        return result, losses

    def _mask_losses(self, s_hat, log_k, boxes, matched, targets, phi_levels, padded_size):
        M = s_hat.shape[-1]
        mask_targets = [
            project_masks_aligned(t["masks"], b, i, M) for t, b, i in zip(targets, boxes, matched, strict=True)
        ]
        mask_targets = torch.cat(mask_targets) if mask_targets else s_hat.new_zeros((0, M, M))
        losses = {}
        if mask_targets.numel() == 0:
            zero = s_hat.sum() * 0
            losses["loss_mask"] = zero
            if self.semiconv:
                losses["loss_kernel"] = zero + self.kernel.log_sigma * 0
        else:
            losses["loss_mask"] = F.binary_cross_entropy_with_logits(s_hat, mask_targets)
            if self.semiconv:
                log_k = log_k.clamp(max=-1e-4)
                k_logit = log_k - torch.log(-torch.expm1(log_k))
                losses["loss_kernel"] = self.config.kernel_loss_weight * F.binary_cross_entropy_with_logits(k_logit, mask_targets)
        if self.semiconv:
            phi = phi_levels[EMBEDDING_LEVEL]
            per_image = []
            for i, t in enumerate(targets):
                psi = self.dense_psi(phi[i], padded_size)
                gt = t["masks"].to(psi.dtype)
                h, w = psi.shape[-2:]
                stride = padded_size[0] // h
                gt = F.pad(gt, (0, w * stride - gt.shape[-1], 0, h * stride - gt.shape[-2]))
                gt_small = F.avg_pool2d(gt[:, None], stride)[:, 0] >= 0.5 if len(gt) else gt.new_zeros((0, h, w)).bool()
                per_image.append(attraction_loss(psi, gt_small))
            losses["loss_embedding"] = self.config.embedding_loss_weight * torch.stack(per_image).mean()
        return losses
