"""Tiny models and synthetic data for fast tests."""

import numpy as np

from semiconv.config import ModelConfig, TrainConfig


def tiny_config(**overrides) -> ModelConfig:
    cfg = ModelConfig(
        fpn_channels=32, box_head_width=64, mask_head_layers=(32, 32), mask_resolution=28,
        embedding_hidden=32, rpn_pre_nms_train=200, rpn_post_nms_train=100, rpn_pre_nms_test=100,
        rpn_post_nms_test=50, rpn_batch_per_image=64, box_batch_per_image=32, max_detections=30,
    )
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def tiny_train_config(**overrides) -> TrainConfig:
    cfg = TrainConfig(steps=3, batch_size=2, crop_size=128, val_every=3, checkpoint_every=1, warmup_steps=1, num_threads=0)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def synthetic_samples(n, shape=(160, 160), seed=0, config=None):
    from semiconv.data.generic import AnnotatedImage
    from semiconv.data.synthetic import generate
    from semiconv.training.samples import samples_from_annotated

    items = []
    for i in range(n):
        s = generate(shape, seed + i)
        items.append(AnnotatedImage(f"syn{i}", s.image, s.masks, s.boxes))
    return samples_from_annotated(items, config or tiny_config())


def toy_masks(shape=(128, 128)):
    masks = np.zeros((3,) + shape, bool)
    masks[0, 10:50, 20:28] = True
    masks[1, 30:38, 5:90] = True  # crosses worm 0
    masks[2, 90:98, 30:110] = True
    return masks
