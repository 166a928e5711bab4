"""Inference in layers: raw outputs once, post-processing and calibration as functions of them."""

import numpy as np
import pytest
import torch
from helpers import synthetic_samples, tiny_config

from semiconv.calibration import choose_thresholds, threshold_combinations, variants
from semiconv.inference import cached_model, load_model
from semiconv.mask_cleanup import clean_masks
from semiconv.model_folders import save_model_folder
from semiconv.network import build_model
from semiconv.postprocess import Thresholds, postprocess


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    cfg = tiny_config(foreground_head=True, score_threshold=0.0, foreground_growth=2, keep_largest_piece=True)
    network = build_model(cfg)
    last = [m for m in network.foreground_head.modules() if isinstance(m, torch.nn.Conv2d) and m.out_channels == 1][-1]
    with torch.no_grad():  # untrained, the foreground head says ~0.1 everywhere: lift it to 0.5-0.7
        last.bias += 2.5
    folder = tmp_path_factory.mktemp("m") / "tiny-fg"
    save_model_folder(folder, network, cfg)
    return load_model(folder, device="cpu")


@pytest.fixture(scope="module")
def sample():
    return synthetic_samples(1, (130, 170), seed=3)[0]


def test_predict_is_raw_outputs_then_postprocess(model):
    from semiconv.data.synthetic import generate

    image = generate((130, 170), 3).image
    x, _ = model.network_input(image)
    raw = model.raw_outputs(x, min_score=0.2)
    assert len(raw.tiles) == 1 and raw.tiles[0].mask_probability.shape[1:] == (130, 170)
    assert raw.tiles[0].mask_probability.dtype == np.float32 and (raw.tiles[0].scores >= 0.2).all()
    by_hand = postprocess(raw, model.thresholds(score=0.2, mask=0.4), model.config.coord_scale)
    pred = model.predict(image, score_threshold=0.2, mask_threshold=0.4)
    assert len(pred) > 0
    for field in ("masks", "scores", "boxes", "labels", "seeds", "embedding", "displacement", "foreground"):
        assert np.array_equal(getattr(by_hand, field), getattr(pred, field)), field


def test_thresholds_default_to_the_models_own(model):
    t = Thresholds.of(model.config, score=0.7, mask=None)
    assert t.score == 0.7 and t.mask == model.config.mask_threshold
    assert t.growth == 2 and t.largest_piece and t.cleans


def test_calibration_variants_are_what_postprocess_gives(model, sample):
    """Each (mask, foreground, containment) variant the calibration scores, cleaned at a score
    threshold, is exactly the prediction a model with those thresholds makes."""
    raw = model.raw_outputs(sample.image, min_score=0.05, dense=False)
    combos = threshold_combinations(model.config)
    assert len(combos) == 4 * 4 * 3
    compared = 0
    found, foreground_probability = variants(raw, model.config, combos)
    for combo, (masks, scores, _) in list(zip(combos, found, strict=True))[::7]:
        mask, foreground, containment = combo
        allowed = foreground_probability >= foreground
        for score in (0.3, 0.6):
            above = scores >= score
            cleaned = clean_masks(masks[above], allowed, 2, True)
            thresholds = model.thresholds(score=score, mask=mask, foreground=foreground, containment=containment)
            pred = postprocess(raw, thresholds, model.config.coord_scale)
            assert np.array_equal(pred.scores, scores[above]) and np.array_equal(pred.masks, cleaned), (combo, score)
            compared += int(cleaned.any())
    assert compared > 5  # not only empty predictions


def test_choose_thresholds_records_its_choice_and_restores_the_mode(model, sample):
    network = model.network
    network.train()
    threshold, metrics = choose_thresholds(network, model.config, [sample], torch.device("cpu"))
    assert network.training  # left as it was
    network.eval()
    combos = threshold_combinations(model.config)
    assert (metrics["mask_threshold"], metrics["foreground_threshold"], metrics["mask_containment_threshold"]) in combos
    assert threshold in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9) and "AP" in metrics and metrics["images"] == 1


def test_cached_model_loads_once_and_again_after_the_weights_or_config_change(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_config()
    folder = tmp_path / "tiny"
    save_model_folder(folder, build_model(cfg), cfg)
    first = cached_model(folder, device="cpu")
    assert cached_model(str(folder), device="cpu") is first
    import os

    stat = (folder / "weights.pt").stat()
    os.utime(folder / "weights.pt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a new fine-tune saved
    second = cached_model(folder, device="cpu")
    assert second is not first and cached_model(folder, device="cpu") is second
    import json

    config = json.loads((folder / "config.json").read_text())
    config["model"]["score_threshold"] = 0.77  # thresholds chosen again, weights untouched
    (folder / "config.json").write_text(json.dumps(config))
    stat = (folder / "config.json").stat()
    os.utime(folder / "config.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    third = cached_model(folder, device="cpu")
    assert third is not second and third.config.score_threshold == 0.77


def test_search_tables_equal_scoring_each_variant(model, sample):
    """The threshold search's per-image table (semiconv.calibration.image_table) holds, for each
    combination and score threshold, exactly the figures matching_summary gives for the cleaned
    masks of that variant; the pooled choice from two processes equals the one from this one."""
    from semiconv.calibration import SCORE_THRESHOLD_CANDIDATES, choose_from_outputs, image_table
    from semiconv.metrics import matching_summary, summary_from_matching

    raw = model.raw_outputs(sample.image, min_score=0.05, dense=False)
    combos = threshold_combinations(model.config)
    table = image_table(raw, sample.masks, model.config, combos)
    assert table.shape[:2] == (len(combos), len(SCORE_THRESHOLD_CANDIDATES))
    found, foreground_probability = variants(raw, model.config, combos)
    for c, (masks, scores, _) in list(enumerate(found))[::5]:
        allowed = foreground_probability >= combos[c][1]
        for k, t in enumerate(SCORE_THRESHOLD_CANDIDATES[::3]):
            cleaned = clean_masks(masks[scores >= t], allowed, 2, True)
            expected = matching_summary([(cleaned, scores[scores >= t])], [sample.masks], t)
            got = summary_from_matching(table[c, 3 * k], 1, t)
            assert got == pytest.approx(expected, nan_ok=True), (combos[c], t)
    serial = choose_from_outputs(lambda: iter([raw, raw]), [sample.masks] * 2, model.config)
    parallel = choose_from_outputs(lambda: iter([raw, raw]), [sample.masks] * 2, model.config, workers=2)
    assert serial == parallel


def test_mask_overlaps_count_every_shared_pixel():
    """Overlaps computed over the true masks' pixels only equal the plain count."""
    from semiconv.metrics import mask_iou, mask_overlaps

    rng = np.random.default_rng(0)
    pred, true = rng.random((5, 30, 40)) > 0.7, rng.random((4, 30, 40)) > 0.9
    inter, pa, ta = mask_overlaps(pred, true)
    assert np.array_equal(inter, np.einsum("phw,thw->pt", pred.astype(int), true.astype(int)))
    assert np.array_equal(pa, pred.sum((1, 2))) and np.array_equal(ta, true.sum((1, 2)))
    assert mask_iou(pred[:0], true).shape == (0, 4) and mask_overlaps(pred, true[:0])[0].shape == (5, 0)


def test_post_processing_loads_only_what_it_uses():
    """Importing semiconv.postprocess (what calibration and research scripts use on kept outputs)
    loads neither the network's construction nor the data readers (a fresh interpreter)."""
    import subprocess
    import sys

    code = "import sys, semiconv.postprocess; print(' '.join(m for m in sys.modules if m.startswith('semiconv')))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    assert "semiconv.postprocess" in loaded
    assert not loaded & {"semiconv.network.build", "semiconv.network.roi_heads", "semiconv.data.bbbc010",
                         "semiconv.data.synthetic", "semiconv.inference"}, loaded


def test_carried_boxes_are_scored_segmented_and_kept_apart_from_box_nms(model):
    """A previous frame's worm boxes given to the network come back as detections of their own,
    flagged as carried, even two identical boxes (box NMS would keep one); the detector's own
    detections are those of a plain pass, less those whose box is a carried one's (IoU > 0.9)."""
    from torchvision.ops import box_iou

    from semiconv.data.synthetic import generate

    x, _ = model.network_input(generate((130, 170), 3).image)
    plain = model.raw_outputs(x, min_score=0.01).tiles[0]
    carried = np.array([[20, 30, 90, 60], [20, 30, 90, 60], [100, 10, 160, 120]], np.float32)
    tile = model.raw_outputs(x, min_score=0.01, carried=carried).tiles[0]
    assert plain.carried is None and tile.carried.dtype == bool
    assert tile.carried.sum() == 3
    assert (np.diff(tile.scores) <= 0).all()  # one list, highest score first
    twins = tile.boxes[tile.carried]
    duplicate = box_iou(torch.from_numpy(plain.boxes), torch.from_numpy(twins)).amax(1).numpy() > 0.9
    assert np.allclose(np.sort(tile.scores[~tile.carried]), np.sort(plain.scores[~duplicate]), atol=1e-5)
    assert np.isclose(twins[:, None], twins[None]).all(-1).sum() >= 4  # the two identical boxes both kept
    assert (tile.mask_probability[tile.carried].reshape(3, -1).max(1) > 0).all()
    # the detector's own find of a carried worm (box IoU > 0.9) goes; another worm's stays
    boxes, scores, labels, flags = model.network.roi_heads.with_carried(
        torch.tensor([[0.0, 0, 10, 40], [50, 50, 60, 60]]), torch.tensor([0.95, 0.8]), torch.tensor([1, 1]),
        torch.tensor([[0.0, 0, 10, 41]]), torch.tensor([0.9]))
    assert flags.tolist() == [True, False] and torch.allclose(scores, torch.tensor([0.9, 0.8]))
    assert boxes[1].tolist() == [50, 50, 60, 60] and labels.tolist() == [1, 1]


def test_a_carried_worm_outranks_a_fresh_detection_that_pairs_two_crossing_worms():
    """Two worms cross; the detector finds one mask pairing an arm of each (score 0.99), the boxes
    carried from the frame before give each worm whole (0.9). Without the carried flags NMS and
    containment keep the paired mask; with them, the two worms."""
    from semiconv.network_outputs import RawOutputs, TileOutputs
    from semiconv.postprocess import detections

    a, b = np.zeros((100, 100), np.float32), np.zeros((100, 100), np.float32)
    a[47:53, 10:90] = 1  # horizontal worm
    b[10:90, 47:53] = 1  # vertical worm
    paired = np.maximum(a * (np.arange(100) < 50)[None], b * (np.arange(100) < 50)[:, None])
    probability = np.stack([paired, a, b])
    scores = np.array([0.99, 0.9, 0.9], np.float32)

    def tile(carried):
        return TileOutputs((0, 0), (0, 0, 100, 100), scores, np.zeros((3, 4), np.float32), probability,
                           np.zeros((3, 2), np.float32), np.zeros((3, 2), np.float32), carried=carried)

    thresholds = Thresholds(score=0.5, mask=0.5, foreground=0.5, nms=0.5, containment=0.4)
    alone = detections(RawOutputs((100, 100), [tile(None)]), thresholds, 1.0)
    assert np.array_equal(alone.masks, paired[None] > 0.5)
    carried = detections(RawOutputs((100, 100), [tile(np.array([False, True, True]))]), thresholds, 1.0)
    assert len(carried.masks) == 2 and np.array_equal(carried.masks, np.stack([a, b]) > 0.5)
    assert np.allclose(carried.scores, [0.9, 0.9]) and carried.carried.all()


def test_a_mask_under_the_minimum_area_is_not_a_worm():
    """A detection whose mask has fewer pixels than min_area (a 2 x 2 speck, as a model can find on a
    blank frame) is never kept by mask NMS; the worm beside it stays. 0 keeps both; the model's
    `min_mask_area_px` is what Thresholds.of takes."""
    from semiconv.config import ModelConfig
    from semiconv.network_outputs import RawOutputs, TileOutputs
    from semiconv.postprocess import detections

    worm, speck = np.zeros((60, 60), np.float32), np.zeros((60, 60), np.float32)
    worm[28:33, 5:55] = 1
    speck[10:12, 10:12] = 1
    tile = TileOutputs((0, 0), (0, 0, 60, 60), np.array([0.6, 0.9], np.float32), np.zeros((2, 4), np.float32),
                       np.stack([speck, worm]), np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32))
    raw = RawOutputs((60, 60), [tile])
    thresholds = Thresholds.of(ModelConfig(min_mask_area_px=50), score=0.5, mask=0.5, foreground=0.5)
    assert thresholds.min_area == 50
    kept = detections(raw, thresholds, 1.0)
    assert len(kept.masks) == 1 and np.array_equal(kept.masks[0], worm > 0.5)
    assert len(detections(raw, Thresholds.of(ModelConfig(), score=0.5, mask=0.5, foreground=0.5), 1.0).masks) == 2
    with pytest.raises(ValueError, match="min_mask_area_px"):
        ModelConfig(min_mask_area_px=-1).validate()
