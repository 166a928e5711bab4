"""Test-time augmentation: mirrored passes mapped back exactly and fused by mask vote."""

import numpy as np
import pytest
import torch
from helpers import tiny_config, toy_masks

from semiconv.data import boxes_from_masks
from semiconv.network import build_model
from semiconv.network_outputs import TileOutputs, raw_outputs, tile_outputs
from semiconv.tta import FLIPS, fused_tile_outputs, mirrored, mirrored_boxes, mirrored_points


@pytest.mark.parametrize(("rows", "cols"), FLIPS)
def test_boxes_and_points_mirror_with_the_masks(rows, cols):
    masks = toy_masks((100, 130))
    boxes = boxes_from_masks(masks)
    assert np.allclose(mirrored_boxes(boxes, 100, 130, rows, cols), boxes_from_masks(mirrored(masks, rows, cols)))
    assert np.allclose(mirrored_boxes(mirrored_boxes(boxes, 100, 130, rows, cols), 100, 130, rows, cols), boxes)
    centre_of_pixel = np.array([[12.5, 40.5]])  # column 12, row 40
    x, y = mirrored_points(centre_of_pixel, 100, 130, rows, cols)[0]
    image = np.zeros((100, 130), bool)
    image[40, 12] = True
    assert mirrored(image, rows, cols)[int(y), int(x)]


def _pass(masks, scores, shift=0.0):
    n, h, w = masks.shape
    return TileOutputs(origin=(0, 0), core=(0, 0, h, w), scores=np.asarray(scores, np.float32),
                       boxes=boxes_from_masks(masks).astype(np.float32), mask_probability=masks.astype(np.float32) * 0.9,
                       seeds_xy=np.full((n, 2), 5.0 + shift, np.float32), seed_embeddings=np.full((n, 8), shift, np.float32),
                       foreground=np.full((h, w), shift, np.float32))


def test_passes_are_fused_by_mask_vote():
    masks = toy_masks()
    worm, other = masks[:1], masks[2:3]
    fragment = masks[1:2].copy()
    fragment[:, :, 50:] = False  # part of the crossing worm: found by one pass only
    passes = [_pass(np.concatenate([worm, other, fragment]), [0.9, 0.6, 0.8], shift=0)]
    passes += [_pass(np.concatenate([other, worm]), [0.5, 0.7], shift=k) for k in (1, 2, 3)]
    fused = fused_tile_outputs(passes)
    assert len(fused.scores) == 3
    assert np.allclose(fused.scores, [(0.9 + 3 * 0.7) / 4, (0.6 + 3 * 0.5) / 4, 0.8 / 4])  # summed over the 4 passes
    assert np.array_equal(fused.mask_probability[0] >= 0.5, worm[0]) and np.array_equal(fused.mask_probability[2] >= 0.5, fragment[0])
    assert np.allclose(fused.seeds_xy[:2], 5.0) and np.allclose(fused.seed_embeddings[:2], 0.0)  # the unmirrored pass's
    assert np.allclose(fused.foreground, 1.5)  # the mean of the passes' foreground


def test_tta_outputs_are_the_mirrored_passes_mapped_back():
    torch.manual_seed(0)
    config = tiny_config(foreground_head=True, foreground_arch="unet")
    network = build_model(config).eval()
    x = np.random.default_rng(0).random((1, 96, 128), dtype=np.float32)
    raw = raw_outputs(network, config, x, torch.device("cpu"), 0.0, dense=True, tta=True)
    tile = raw.tiles[0]
    passes = [tile_outputs(network, config, mirrored(x, rows, cols), torch.device("cpu"), 0.0, False) for rows, cols in FLIPS]
    expected = np.mean([mirrored(p.foreground, rows, cols) for p, (rows, cols) in zip(passes, FLIPS, strict=True)], 0)
    assert np.allclose(tile.foreground, expected, atol=1e-6)
    assert tile.embedding is not None and tile.embedding.shape[-2:] == (96, 128)
    n = len(tile.scores)
    assert tile.mask_probability.shape == (n, 96, 128) and tile.boxes.shape == (n, 4) and tile.seeds_xy.shape == (n, 2)
    assert np.all(np.diff(tile.scores) <= 0)
    assert sum(len(p.scores) for p in passes) >= n >= max(len(p.scores) for p in passes)


def test_a_model_loaded_with_tta_uses_the_thresholds_chosen_for_it(tmp_path):
    from semiconv.inference import cached_model, load_model
    from semiconv.model_folders import save_model_folder

    chosen = {"score_threshold": 0.3, "mask_threshold": 0.35, "foreground_threshold": 0.6, "mask_containment_threshold": 0.6}
    config = tiny_config(score_threshold=0.7, tta_thresholds=chosen)
    folder = tmp_path / "tiny"
    save_model_folder(folder, build_model(config), config)
    plain, mirrored_passes = load_model(folder, device="cpu"), load_model(folder, device="cpu", tta=True)
    assert not plain.tta and plain.thresholds().score == 0.7
    assert mirrored_passes.tta and mirrored_passes.thresholds().score == 0.3 and mirrored_passes.thresholds().mask == 0.35
    shared = cached_model(folder, device="cpu", tta=True)
    assert shared.tta and shared.network is cached_model(folder, device="cpu").network  # one network in memory
    with pytest.raises(ValueError, match="tta_thresholds takes only"):
        tiny_config(tta_thresholds={"score": 0.3}).validate()


def test_segment_with_tta_writes_the_usual_outputs(tmp_path):
    import tifffile
    from helpers import run_cli

    from semiconv.data.synthetic import generate
    from semiconv.model_folders import save_model_folder

    torch.manual_seed(0)
    config = tiny_config(score_threshold=0.0)
    save_model_folder(tmp_path / "tiny", build_model(config), config)
    tifffile.imwrite(tmp_path / "well.tif", generate((96, 128), 1).image)
    r = run_cli("segment", tmp_path / "well.tif", "--out", tmp_path / "out", "--model", tmp_path / "tiny", "--tta")
    assert r.returncode == 0, r.stderr
    assert "mirrored passes fused" in r.stderr
    assert "no thresholds chosen for --tta" in r.stderr  # this model has none: said so, its own used
    instances = tifffile.imread(tmp_path / "out" / "well_instances.tif")
    assert instances.shape[-2:] == (96, 128)
