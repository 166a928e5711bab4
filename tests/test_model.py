import json

import numpy as np
import pytest
import torch
from helpers import synthetic_samples, tiny_config, tiny_train_config, toy_masks

from semiconv.errors import CheckpointError, InputError
from semiconv.inference import load_model
from semiconv.model_folders import save_model_folder
from semiconv.network import build_model
from semiconv.network.embedding import attraction_loss, scale_gradient
from semiconv.network.masks import paste_masks_aligned, project_masks_aligned
from semiconv.training import train
from semiconv.training.samples import to_target


def test_gradient_scaling():
    x = torch.ones(3, requires_grad=True)
    scale_gradient(x, 0.1).sum().backward()
    assert torch.allclose(x.grad, torch.full((3,), 0.1))


def test_attraction_loss_zero_when_collapsed_positive_otherwise():
    psi = torch.zeros(8, 10, 10)
    masks = torch.zeros(2, 10, 10, dtype=torch.bool)
    masks[0, :5] = masks[1, 5:] = True
    assert attraction_loss(psi, masks).item() < 1e-3
    psi[0, :5] = torch.arange(10.0)[None].expand(5, -1)
    assert attraction_loss(psi, masks).item() > 1.0
    assert attraction_loss(psi, masks[:0]).item() == 0.0


def test_aligned_round_trip_is_exact_for_boxes_of_masks():
    masks = torch.from_numpy(toy_masks()).float()
    from semiconv.data import boxes_from_masks

    boxes = torch.from_numpy(boxes_from_masks(masks.numpy().astype(bool)))
    small = project_masks_aligned(masks, boxes, torch.arange(3), 28)
    back = paste_masks_aligned(small, boxes, (128, 128)) >= 0.5
    assert torch.equal(back, masks.bool())


@pytest.mark.parametrize("head", ["semiconv", "plain"])
def test_training_losses_and_empty_images(head):
    torch.manual_seed(0)
    model = build_model(tiny_config(head=head)).train()
    masks = toy_masks()
    images = [torch.rand(1, 128, 128), torch.rand(1, 128, 128)]
    targets = [to_target(masks), to_target(masks[:0])]  # second image has no worm
    losses = model(images, targets)
    expected = {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}
    if head == "semiconv":
        expected |= {"loss_kernel", "loss_embedding"}
    assert set(losses) == expected
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    if head == "semiconv":
        assert model.roi_heads.kernel.log_sigma.grad is not None
        assert model.roi_heads.embedding_head.net[2].weight.grad.abs().sum() > 0


def test_mask_branch_trains_on_at_most_mask_rois_per_image_positive_rois():
    masks = toy_masks()
    images = [torch.rand(1, 128, 128), torch.rand(1, 128, 128)]
    seen = {}
    for cap in (0, 1):
        torch.manual_seed(0)
        model = build_model(tiny_config(mask_rois_per_image=cap)).train()
        model.roi_heads.mask_head.register_forward_hook(lambda m, inputs, out, cap=cap: seen.__setitem__(cap, len(inputs[0])))
        losses = model(images, [to_target(masks), to_target(masks)])
        assert torch.isfinite(losses["loss_mask"])
    assert seen[0] >= 2 * len(masks) and seen[1] == 2  # every positive RoI (the true boxes among them), then 1 an image


def test_foreground_head_trains_on_the_first_foreground_images_per_batch_images():
    masks = toy_masks()
    images = [torch.rand(1, 128, 128) for _ in range(3)]
    targets = [to_target(masks), to_target(masks[:1]), to_target(masks[:0])]

    def fresh_model(n):
        torch.manual_seed(0)
        return build_model(tiny_config(foreground_head=True, foreground_arch="unet", foreground_images_per_batch=n)).train()

    seen, losses = {}, {}
    for n in (0, 1):
        model = fresh_model(n)
        model.foreground_head.register_forward_hook(lambda m, inputs, out, n=n: seen.__setitem__(n, len(inputs[0])))
        losses[n] = model(images, targets)["loss_foreground"]
        losses[n].backward()
        assert model.foreground_head.out.weight.grad.abs().sum() > 0
    assert seen == {0: 3, 1: 1}
    assert not torch.allclose(losses[0], losses[1])
    # with 1, the other images' truth does not enter the loss
    other_truth = [targets[0], to_target(masks), to_target(masks)]
    assert torch.allclose(fresh_model(1)(images, other_truth)["loss_foreground"], losses[1])


def test_native_resolution_no_upscaling():
    model = build_model(tiny_config()).eval()
    with torch.no_grad():
        out = model([torch.rand(1, 100, 140)])[0]
    assert out["masks"].shape[-2:] == (100, 140)
    assert out["embedding_stride4"].shape[0] == 8


def _tiny_model_folder(tmp_path, head="semiconv"):
    cfg = tiny_config(head=head, score_threshold=0.0)
    folder = tmp_path / f"tiny-{head}"
    save_model_folder(folder, build_model(cfg), cfg)
    return folder


def test_predict_api_shapes_and_awkward_inputs(tmp_path):
    model = load_model(_tiny_model_folder(tmp_path), device="cpu")
    image = synthetic_samples(1, (120, 150))[0].image[0]
    pred = model.predict(image * 1000)
    n = len(pred)
    assert pred.masks.shape == (n, 120, 150) and pred.masks.dtype == bool
    assert pred.labels.shape == (120, 150) and pred.labels.dtype == np.uint16
    assert pred.embedding.shape == (8, 120, 150) and pred.displacement.shape == (2, 120, 150)
    assert pred.seeds.shape == (n, 2) and pred.scores.shape == (n,)
    assert n > 0  # score threshold 0: the untrained tiny model keeps its detections
    k = pred.affinity(0)
    assert k.shape == (120, 150) and 0 < k.max() <= 1.0
    assert np.array_equal(pred.affinity(0, (slice(10, 40), slice(5, 60))), k[10:40, 5:60])  # a window of it
    # the coordinate part of Psi is the pixel position plus displacement
    row, col = 50, 70
    cs = model.config.coord_scale
    assert np.isclose(pred.embedding[0, row, col] * cs, col + 0.5 + pred.displacement[1, row, col], atol=1e-3)
    # awkward but valid
    for awkward in (np.zeros((100, 100), np.uint16), np.full((100, 100), 7.5, np.float32), np.ones((20, 30), np.uint8)):
        p = model.predict(awkward)
        assert p.labels.shape == awkward.shape
    with pytest.warns(UserWarning, match="RGB"):
        model.predict(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(InputError, match="NaN"):
        model.predict(np.full((64, 64), np.nan, np.float32))
    with pytest.raises(InputError, match="2-D"):
        model.predict(np.zeros(10))


def test_plain_head_has_no_embedding(tmp_path):
    model = load_model(_tiny_model_folder(tmp_path, "plain"), device="cpu")
    pred = model.predict(np.random.default_rng(0).random((96, 96)).astype(np.float32))
    assert pred.embedding is None and pred.displacement is None


def test_bad_checkpoints(tmp_path):
    folder = _tiny_model_folder(tmp_path)
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing-model")
    (folder / "weights.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(folder)
    other = _tiny_model_folder(tmp_path, "plain")
    meta = json.loads((other / "config.json").read_text())
    meta["model"]["fpn_channels"] = 64  # config no longer matches the weights
    (other / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(other)


def test_train_loop_saves_resumes_and_loads(tmp_path):
    cfg = tiny_config()
    samples = synthetic_samples(3)
    out = tmp_path / "model"
    result = train(samples[:2], samples[2:], cfg, tiny_train_config(steps=2, val_every=2), out, torch.device("cpu"))
    assert result.steps == 2 and (out / "weights.pt").exists() and (out / "checkpoints" / "last.pt").exists()
    meta = json.loads((out / "config.json").read_text())
    assert "validation" in meta and "avAP" in meta["validation"]
    lines = (out / "log.jsonl").read_text().splitlines()
    assert any("validation" in line for line in lines)
    resumed = train(samples[:2], samples[2:], cfg, tiny_train_config(steps=3, val_every=3), out, torch.device("cpu"), resume=True)
    assert resumed.steps == 3
    steps_logged = [json.loads(line).get("step") for line in (out / "log.jsonl").read_text().splitlines()]
    assert 3 in steps_logged
    model = load_model(out, device="cpu")
    assert model.predict(samples[2].image[0]).labels.shape == samples[2].image.shape[1:]


def test_training_continues_after_intermediate_validation(tmp_path):
    samples = synthetic_samples(3)
    out = tmp_path / "model"
    result = train(samples[:2], samples[2:], tiny_config(), tiny_train_config(steps=3, val_every=1), out, torch.device("cpu"))
    assert result.steps == 3
    validations = [line for line in (out / "log.jsonl").read_text().splitlines() if "validation" in line]
    assert len(validations) == 3


def test_stop_keeps_a_loadable_model(tmp_path):
    samples = synthetic_samples(2)
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 1

    out = tmp_path / "stopped"
    result = train(samples, [], tiny_config(), tiny_train_config(steps=50), out, torch.device("cpu"), should_stop=stop)
    assert result.stopped and result.steps == 1
    load_model(out, device="cpu")


def test_large_images_are_tiled_and_merged(tmp_path, monkeypatch):
    """Tiling with an oracle per tile (the true worms fully inside the tile): every worm comes back once,
    at its place, and Psi's coordinate channels stay absolute across tiles."""
    from semiconv.data.synthetic import generate

    model = load_model(_tiny_model_folder(tmp_path), device="cpu")
    truth = generate((300, 420), 7)
    image, gt = truth.image, truth.masks
    import semiconv.network_outputs as network_outputs
    from semiconv.data import boxes_from_masks

    real = network_outputs.tile_outputs

    def oracle(network, config, x, device, min_score, dense, origin=(0, 0), core=None, carried=None):
        tile = real(network, config, x, device, min_score, dense, origin, core)
        (r0, c0), (h, w) = origin, x.shape[1:]
        inside = [m[r0:r0 + h, c0:c0 + w] for m in gt if m[r0:r0 + h, c0:c0 + w].sum() == m.sum()]
        masks = np.array(inside, bool).reshape(-1, h, w)
        tile.scores = np.linspace(0.9, 0.8, len(masks)).astype(np.float32)
        tile.boxes, tile.mask_probability = boxes_from_masks(masks), masks.astype(np.float32)
        tile.seeds_xy, tile.seed_embeddings = np.zeros((len(masks), 2), np.float32), np.zeros((len(masks), 8), np.float32)
        return tile

    monkeypatch.setattr(network_outputs, "tile_outputs", oracle)
    model.config.max_image_side = 256  # tiles of 256 with 128 overlap
    tiled = model.predict(image)
    assert tiled.labels.shape == image.shape and tiled.embedding.shape == (8, 300, 420)
    assert np.allclose(tiled.embedding[0] - tiled.displacement[1] / model.config.coord_scale,
                       (np.arange(420) + 0.5)[None] / model.config.coord_scale, atol=1e-4)
    found = {tuple(np.flatnonzero(m.ravel())[:5]) for m in tiled.masks}
    expected = {tuple(np.flatnonzero(m.ravel())[:5]) for m in gt if m.sum()}
    fits = [m for m in gt if (np.ptp(np.nonzero(m)[0]) < 128 and np.ptp(np.nonzero(m)[1]) < 128)]
    assert len(tiled) == len(found)  # no duplicates
    assert found <= expected and len(found) >= len(fits)


def test_refuses_gigantic_images(tmp_path):
    from semiconv import inference

    model = load_model(_tiny_model_folder(tmp_path), device="cpu")
    old = inference.MAX_PIXELS
    inference.MAX_PIXELS = 1000
    try:
        with pytest.raises(InputError, match="larger than"):
            model.predict(np.zeros((50, 50), np.uint8))
    finally:
        inference.MAX_PIXELS = old


def test_dense_embedding_matches_roi_level_psi(tmp_path):
    """Psi at full resolution agrees with the stride-4 map it is upsampled from (odd sizes too)."""
    model = load_model(_tiny_model_folder(tmp_path), device="cpu")
    image = np.random.default_rng(3).random((101, 133)).astype(np.float32)
    pred = model.predict(image)
    with torch.no_grad():
        out = model.network([torch.from_numpy(model.network_input(image)[0])])[0]
    coarse = out["embedding_stride4"].numpy()  # D x h x w on the padded image, cell (i, j) centred at 4 * (i + 0.5)
    for i, j in ((3, 4), (10, 20), (20, 30)):
        assert np.allclose(pred.embedding[:, 4 * i + 2, 4 * j + 2], coarse[:, i, j], atol=0.05)


def test_suppress_contained_drops_fragments_and_keeps_crossing_worms():
    from semiconv.postprocess import suppress_contained

    masks = np.zeros((4, 40, 40), bool)
    masks[0, 5:35, 10:14] = True   # a vertical worm
    masks[1, 20:24, 0:40] = True   # a horizontal worm crossing it (16 of its 160 pixels shared)
    masks[2, 8:18, 10:14] = True   # a fragment of the first worm, found again
    # masks[3] stays empty
    scores = np.array([0.9, 0.8, 0.85, 0.99])
    assert sorted(suppress_contained(masks, scores, 0.6)) == [0, 1]
    assert sorted(suppress_contained(masks, scores, 1.0)) == [0, 1, 2]
    assert sorted(suppress_contained(masks, scores, 0.05)) == [0]  # stricter: the crossing one goes too
    assert len(suppress_contained(masks[:0], scores[:0], 0.6)) == 0  # nothing to suppress


def test_mask_nms_and_containment_match_a_full_image_reference():
    """The box-restricted versions give the same answer as counting over the whole image."""
    from semiconv.postprocess import mask_nms, suppress_contained

    rng = np.random.default_rng(5)
    masks = np.zeros((12, 60, 70), bool)
    for k in range(11):  # random rectangles, many overlapping; the last mask stays empty
        r, c = rng.integers(0, 45), rng.integers(0, 55)
        masks[k, r: r + rng.integers(3, 15), c: c + rng.integers(3, 15)] = True
    masks[3] = masks[2]  # an exact duplicate
    masks[5, :, :] |= masks[4] & (rng.random((60, 70)) < 0.8)  # mostly under another mask
    scores = rng.random(12)

    def reference_nms(threshold):
        kept = []
        for i in np.argsort(-scores, kind="stable"):
            if not masks[i].any():
                continue
            ious = [(masks[i] & masks[j]).sum() / (masks[i] | masks[j]).sum() for j in kept]
            if not any(iou > threshold for iou in ious):
                kept.append(i)
        return kept

    def reference_contained(threshold):
        kept, union = [], np.zeros((60, 70), bool)
        for i in np.argsort(-scores, kind="stable"):
            area = masks[i].sum()
            if area == 0 or (threshold < 1 and (masks[i] & union).sum() > threshold * area):
                continue
            kept.append(i)
            union |= masks[i]
        return kept

    for threshold in (0.1, 0.3, 0.5, 0.9):
        assert mask_nms(masks, scores, threshold).tolist() == reference_nms(threshold)
    for threshold in (0.2, 0.6, 1.0):
        assert suppress_contained(masks, scores, threshold).tolist() == reference_contained(threshold)
    assert not {2, 3} <= set(mask_nms(masks, scores, 0.5).tolist())  # never both of two identical masks


def test_foreground_unet_block_on_parts_equals_concatenation():
    """The U-Net's decoder skips the channel concatenation; same result and gradients as with it."""
    import torch

    from semiconv.network.foreground import _block, _block_on_parts

    torch.manual_seed(0)
    block = _block(12, 8)
    a = torch.randn(2, 8, 16, 20, requires_grad=True)
    b = torch.randn(2, 4, 16, 20, requires_grad=True)
    split = _block_on_parts(block, [a, b])
    joined = block(torch.cat([a, b], 1))
    assert torch.allclose(split, joined, atol=1e-5)
    grads_split = torch.autograd.grad(split.square().sum(), [a, b, block[0].weight])
    grads_joined = torch.autograd.grad(joined.square().sum(), [a, b, block[0].weight])
    for g1, g2 in zip(grads_split, grads_joined, strict=True):
        assert torch.allclose(g1, g2, atol=1e-4)


def test_stop_after_keeps_the_planned_schedule(tmp_path):
    """stop_after ends a run early (validated, checkpointed) while the lr follows the cosine
    planned over `steps`: the learning rate at the stop is still high, not the schedule's floor."""
    samples = synthetic_samples(3)
    runs = {}
    for name, overrides in (("stopped", {"steps": 8, "stop_after": 4}), ("full", {"steps": 4})):
        out = tmp_path / name
        result = train(samples[:2], samples[2:], tiny_config(), tiny_train_config(val_every=100, warmup_steps=1, **overrides),
                       out, torch.device("cpu"))
        log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        runs[name] = result, {e["step"]: e["lr"] for e in log if "lr" in e}, log
    stopped, lrs, log = runs["stopped"]
    assert stopped.steps == 4 and max(lrs) == 4
    assert any("validation" in e for e in log)  # validated at the stop
    assert torch.load(tmp_path / "stopped" / "checkpoints" / "last.pt", weights_only=False)["step"] == 4
    full_lrs = runs["full"][1]
    assert lrs[4] > 5 * full_lrs[4]  # mid-schedule vs the end of a 4-step schedule


def test_time_budget_ends_training_and_anneals_the_lr(tmp_path):
    """max_minutes ends a run by time (logged as finished, checkpoint marked done) and the lr
    schedule follows the clock: the last step's lr is the schedule's floor, far below what
    the step count alone would give; val_every 0 keeps the last model without validation."""
    samples = synthetic_samples(3)
    out = tmp_path / "timed"
    result = train(samples[:2], samples[2:], tiny_config(), tiny_train_config(steps=10_000, max_minutes=0.05, val_every=0,
                                                                              warmup_steps=1, checkpoint_every=1000),
                   out, torch.device("cpu"))
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert 1 <= result.steps < 10_000
    assert log[-1]["finished"]["step"] == result.steps and log[-1]["finished"]["train_seconds"] >= 3.0
    assert not any("validation" in e for e in log) and (out / "weights.pt").exists()
    last_lr = [e["lr"] for e in log if "lr" in e][-1]
    assert last_lr == pytest.approx(0.05 * 3e-4, rel=0.02)  # the floor of the cosine, reached by time
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
    assert ckpt["done"] and ckpt["step"] == result.steps and ckpt["train_seconds"] >= 3.0


@pytest.mark.parametrize("workers", [0, 1])
def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, workers):
    """Interrupted after 3 of 6 steps and resumed: the same weights, optimiser state, learning
    rate and next batch as the run that never stopped, with batches made in the training process
    (workers 0) or ahead in a DataLoader process (workers 1)."""
    samples = synthetic_samples(3)
    config = tiny_train_config(steps=6, val_every=0, checkpoint_every=100, warmup_steps=2, workers=workers,
                               autocast_bf16=False)
    config.augment = {**config.augment, "copy_paste": 1, "scale": (0.8, 1.25)}
    whole = train(samples, [], tiny_config(), config, tmp_path / "whole", torch.device("cpu"))
    calls = {"n": 0}

    def stop_after_three():
        calls["n"] += 1
        return calls["n"] > 3

    first = train(samples, [], tiny_config(), config, tmp_path / "parts", torch.device("cpu"), should_stop=stop_after_three)
    assert first.stopped and first.steps == 3
    steps_run = []
    second = train(samples, [], tiny_config(), config, tmp_path / "parts", torch.device("cpu"), resume=True,
                   progress=lambda step, *_: steps_run.append(step))
    assert whole.steps == second.steps == 6 and steps_run == [4, 5, 6]  # only the missing steps were run
    a = torch.load(tmp_path / "whole" / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "parts" / "checkpoints" / "last.pt", weights_only=False)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for key, state in a["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["optimizer"]["state"][key][name])), (key, name)
    assert a["scheduler"]["_last_lr"] == b["scheduler"]["_last_lr"]
    assert torch.equal(a["torch_rng"], b["torch_rng"])
