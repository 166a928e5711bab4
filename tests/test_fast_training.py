"""The fast CPU training step computes what the plain one does: pooling, GroupNorm layout,
bf16 choice, float32 embedding geometry, scale augmentation."""

import json
import sys

import numpy as np
import pytest
import torch
from torchvision.ops import roi_align

from semiconv.network import build_model
from semiconv.network.norm import GroupNorm
from semiconv.network.pooling import NARROW_CHANNELS, aligned_roi_align, roi_align_trainable
from semiconv.precision import bf16_supported, use_bf16
from semiconv.training.loop import train
from semiconv.training.samples import Sample, make_batch, scaled_crop
from tests.helpers import synthetic_samples, tiny_config, tiny_train_config


def _rois(n, image_count, extent, seed=0):
    g = torch.Generator().manual_seed(seed)
    corner = torch.rand(n, 2, generator=g) * extent * 1.1 - 10  # some start outside the map
    size = torch.rand(n, 2, generator=g) * 90 + 0.5
    index = torch.randint(0, image_count, (n, 1), generator=g).float()
    return torch.cat([index, corner, corner + size], 1)


@pytest.mark.parametrize("channels", [NARROW_CHANNELS // 4, NARROW_CHANNELS * 2])  # both code paths
@pytest.mark.parametrize("size,sampling", [(7, 2), (14, 2), (5, 3)])
def test_trainable_roi_align_matches_torchvision_forward_and_gradient(channels, size, sampling):
    feature = torch.randn(3, channels, 24, 31)
    rois = _rois(40, 3, 4 * 31)
    ours_in, theirs_in = feature.clone().requires_grad_(), feature.clone().requires_grad_()
    grad = torch.randn(40, channels, size, size)
    ours = roi_align_trainable(ours_in, rois, size, 0.25, sampling)
    theirs = roi_align(theirs_in, rois, size, 0.25, sampling, aligned=True)
    ours.backward(grad)
    theirs.backward(grad)
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours_in.grad, theirs_in.grad, atol=1e-4, rtol=1e-4)


def test_pooling_uses_torchvision_without_gradients():
    feature = torch.randn(1, 8, 10, 10)
    rois = _rois(5, 1, 40)
    with torch.no_grad():
        assert torch.equal(aligned_roi_align(feature, rois, 7, 0.25, 2), roi_align(feature, rois, 7, 0.25, 2, aligned=True))
    with pytest.raises(ValueError, match="sampling_ratio"):
        roi_align_trainable(feature, rois, 7, 0.25, 0)


def test_group_norm_on_bf16_channels_last_equals_torch():
    x = torch.randn(2, 16, 20, 24).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    ours, theirs = GroupNorm(4, 16), torch.nn.GroupNorm(4, 16)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5)
        ours.bias.normal_()
    theirs.load_state_dict(ours.state_dict())
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(a), theirs(b)
    assert ya.is_contiguous(memory_format=torch.channels_last) and ya.dtype == torch.bfloat16
    torch.testing.assert_close(ya.float(), yb.float(), atol=2e-2, rtol=2e-2)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(a.grad.float(), b.grad.float(), atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, atol=5e-2, rtol=2e-2)


def test_bf16_choice_follows_setting_or_hardware():
    cpu = torch.device("cpu")
    assert use_bf16(True, cpu) and not use_bf16(False, cpu)
    assert use_bf16(None, cpu) == bf16_supported(cpu)


def test_training_logs_its_arithmetic(tmp_path):
    samples = synthetic_samples(2)
    train(samples[:1], samples[1:], tiny_config(), tiny_train_config(steps=1, val_every=0, autocast_bf16=False),
          tmp_path / "m", torch.device("cpu"))
    records = [json.loads(line) for line in (tmp_path / "m" / "log.jsonl").read_text().splitlines()]
    arithmetic = [r["arithmetic"] for r in records if "arithmetic" in r]
    assert arithmetic == [{"device": "cpu", "bf16_autocast": False, "channels_last": True,
                           "kept_freed_memory": sys.platform.startswith("linux"),
                           "threads": torch.get_num_threads(), "from_step": 0}]


def test_embedding_geometry_stays_float32_under_autocast():
    """Seeds and the embedding loss use pixel coordinates / coord_scale: under bf16 autocast they
    must be computed in float32 (bf16 would round a coordinate of 300 px to about 1 px)."""
    config = tiny_config()
    torch.manual_seed(0)
    network = build_model(config).eval()
    image = torch.from_numpy(synthetic_samples(1)[0].image)
    with torch.no_grad():
        plain = network([image])[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = network([image])[0]
    assert mixed["embedding_stride4"].dtype == torch.float32 and mixed["seed_embeddings"].dtype == torch.float32
    # the coordinate part of Psi is exact: Psi - Phi's bf16 noise stays far below one pixel
    error = (mixed["embedding_stride4"][:2] - plain["embedding_stride4"][:2]).abs().max().item() * config.coord_scale
    assert error < 0.5


def test_scaled_crop_changes_worm_width():
    image = np.random.default_rng(0).random((1, 200, 260)).astype(np.float32)
    masks = np.zeros((1, 200, 260), bool)
    masks[0, 90:100, 20:240] = True  # a horizontal worm 10 px wide
    sample = Sample("x", image, masks)
    for scale, width in ((0.8, 8), (1.25, 12)):
        img, crop = scaled_crop(sample, 128, np.random.default_rng(1), (scale, scale))
        assert img.shape == (1, 128, 128) and img.dtype == np.float32 and crop.dtype == bool
        assert len(crop) == 1 and int(np.median(crop[0].sum(0)[crop[0].any(0)])) == width  # thickness across the worm
    empty = Sample("e", image, masks[:0])
    assert scaled_crop(empty, 128, np.random.default_rng(2), (0.8, 1.2))[1].shape == (0, 128, 128)


def test_batches_with_scale_and_copy_paste_have_consistent_targets():
    samples = synthetic_samples(3)
    images, targets = make_batch(samples, 3, 96, np.random.default_rng(0),
                                 {"scale": (0.8, 1.25), "copy_paste": 1, "flip": True}, False)
    for img, t in zip(images, targets, strict=True):
        assert img.shape == (1, 96, 96) and t["masks"].shape[1:] == (96, 96) and len(t["boxes"]) == len(t["masks"])


def test_layout_hand_overs_copy_exactly_in_bands_both_ways(monkeypatch):
    """to_nchw / to_channels_last_copy: the same values in the other layout, a band of rows at a
    time (here 4 rows a band, the last one short), and their gradients handed back in the input's
    layout with the same values."""
    import semiconv.network.layout as layout

    monkeypatch.setattr(layout, "BAND_BYTES", 2 * 6 * 9 * 2 * 4)  # 4 rows of a 2 x 6 x 18 x 9 bf16 tensor
    x = torch.randn(2, 6, 18, 9).to(torch.bfloat16).contiguous(memory_format=torch.channels_last).requires_grad_()
    nchw = layout.to_nchw(x)
    assert nchw.is_contiguous() and not nchw.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(nchw, x)
    back = layout.to_channels_last_copy(nchw * 2)
    assert back.is_contiguous(memory_format=torch.channels_last) and torch.equal(back, x * 2)
    g = torch.randn(2, 6, 18, 9).to(torch.bfloat16)
    back.backward(g)
    assert x.grad.is_contiguous(memory_format=torch.channels_last) and torch.equal(x.grad, g * 2)
