"""The native-resolution foreground head: added to a trained detector, trained alone, used to cut masks."""

import json

import numpy as np
import pytest
import torch
from helpers import synthetic_samples, tiny_config, tiny_train_config
from scipy import ndimage as ndi

from semiconv.calibration import CONTAINMENT_CANDIDATES, MASK_THRESHOLD_CANDIDATES
from semiconv.inference import load_model
from semiconv.model_folders import read_model_folder
from semiconv.network import build_model
from semiconv.training import train


@pytest.mark.parametrize("arch", ["shallow", "unet"])
def test_foreground_head_loss_and_output_shapes(arch):
    torch.manual_seed(0)
    net = build_model(tiny_config(foreground_head=True, foreground_arch=arch))
    samples = synthetic_samples(2)
    from semiconv.training.samples import to_target

    images = [torch.from_numpy(s.image) for s in samples]
    targets = [to_target(s.masks) for s in samples]
    net.train()
    losses = net(images, targets)
    assert "loss_foreground" in losses and losses["loss_foreground"] > 0
    net.eval()
    with torch.no_grad():
        out = net(images[:1])[0]
    assert out["foreground"].shape == images[0].shape[1:]
    assert float(out["foreground"].min()) >= 0 and float(out["foreground"].max()) <= 1


def contrasted_samples(n):
    """Synthetic worms drawn dark on a bright, noisy background (learnable in a few steps)."""
    from semiconv.data.generic import AnnotatedImage
    from semiconv.data.synthetic import generate
    from semiconv.training.samples import samples_from_annotated

    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        s = generate((160, 160), i)
        image = 0.8 - 0.6 * s.masks.any(0) + rng.normal(0, 0.05, (160, 160))
        items.append(AnnotatedImage(f"syn{i}", image.astype(np.float32), s.masks, s.boxes))
    return samples_from_annotated(items, tiny_config())


@pytest.mark.parametrize("arch", ["shallow", "unet"])
def test_foreground_stage_trains_only_the_new_head(tmp_path, arch):
    samples = contrasted_samples(4)
    base = tmp_path / "base"
    train(samples[:3], samples[3:], tiny_config(), tiny_train_config(steps=2, val_every=2), base, torch.device("cpu"))
    base_config, base_state, _ = read_model_folder(base)

    growth = 2 if arch == "unet" else 0  # validation then scores masks grown into the foreground
    config = tiny_config(foreground_head=True, foreground_arch=arch, foreground_growth=growth)
    out = tmp_path / "with_foreground"
    train(samples[:3], samples[3:], config, tiny_train_config(steps=30, val_every=30, lr=5e-3, warmup_steps=1, train_only="foreground"),
          out, torch.device("cpu"), init_state=base_state)

    _, state, meta = read_model_folder(out)
    for key, value in base_state.items():  # the detector is untouched
        assert torch.equal(state[key].float(), value.float()), key
    assert any(k.startswith("foreground_head.") for k in state)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [entry["loss_foreground"] for entry in log if "loss_foreground" in entry]
    assert np.mean(losses[-2:]) < 0.7 * losses[0]
    assert meta["model"]["mask_threshold"] in MASK_THRESHOLD_CANDIDATES
    assert meta["model"]["mask_containment_threshold"] in CONTAINMENT_CANDIDATES
    assert meta["model"]["foreground_growth"] == growth

    model = load_model(out, device="cpu")
    pred = model.predict(samples[3].image[0], score_threshold=0.0)
    assert pred.foreground.shape == samples[3].image.shape[1:]
    assert len(pred) > 0  # every instance pixel is a foreground pixel
    assert not (pred.masks & (pred.foreground < model.config.foreground_threshold)[None]).any()
    if growth:  # the same masks without growth lie inside the grown ones; the rest is free foreground
        model.config.foreground_growth = 0
        plain = model.predict(samples[3].image[0], score_threshold=0.0)
        assert np.array_equal(plain.scores, pred.scores)
        assert not (plain.masks & ~pred.masks).any()
        added = pred.masks & ~plain.masks
        assert not (added & (plain.masks.any(0) | (pred.foreground < model.config.foreground_threshold))[None]).any()
    model.config.keep_largest_piece = True  # then every mask is one 8-connected piece
    assert all(ndi.label(m, np.ones((3, 3)))[1] <= 1 for m in model.predict(samples[3].image[0], score_threshold=0.0).masks)
    truth = samples[3].masks.any(0)
    learned = pred.foreground >= 0.5
    assert (learned & truth).sum() / (learned | truth).sum() > 0.5

    # napari shows the foreground probability as a (hidden) image layer
    from napari_semiconv._layers import prediction_layers

    layers = {kwargs["name"]: (data, kind) for data, kwargs, kind in prediction_layers([pred], "w", {})}
    data, kind = layers["w foreground probability"]
    assert kind == "image" and np.array_equal(data, pred.foreground)


def test_unet_head_replaces_a_shallow_one_from_the_init_weights():
    """A U-Net foreground head on a model trained with the shallow one: the detector's weights are
    taken, the old head's are dropped and the new head starts fresh."""
    from semiconv.model_folders import load_state_checked

    torch.manual_seed(0)
    shallow = build_model(tiny_config(foreground_head=True)).state_dict()
    unet = build_model(tiny_config(foreground_head=True, foreground_arch="unet"))
    fresh = {k: v.clone() for k, v in unet.state_dict().items()}
    load_state_checked(unet, shallow, "base", new_modules=("foreground_head",))
    state = unet.state_dict()
    for key, value in state.items():
        expected = fresh[key] if key.startswith("foreground_head.") else shallow[key]
        assert torch.equal(value, expected), key
    with pytest.raises(Exception, match="do not match"):  # elsewhere a mismatch is still an error
        load_state_checked(build_model(tiny_config(foreground_head=True, foreground_arch="unet")), shallow, "base")
