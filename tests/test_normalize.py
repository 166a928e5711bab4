"""Network input: percentile normalisation, the noise estimate, and smoothing of images noisier
than the model's training images."""

import numpy as np
import pytest
from helpers import tiny_config

from semiconv.data.synthetic import generate
from semiconv.normalize import channel_input, noise_level, normalize_percentile


@pytest.mark.parametrize("sd", [0.01, 0.05, 0.1])
def test_noise_level_measures_added_noise_not_structure(sd):
    from scipy import ndimage as ndi

    clean = ndi.gaussian_filter(normalize_percentile(generate((256, 320), 5).image), 2)  # worms, their own noise smoothed away
    noisy = clean + np.random.default_rng(0).normal(0, sd, clean.shape).astype(np.float32)
    assert noise_level(clean) < 0.01
    assert noise_level(noisy) == pytest.approx(sd, rel=0.15, abs=0.004)
    assert noise_level(np.zeros((2, 5))) == 0.0


def test_only_images_noisier_than_the_limit_are_smoothed():
    image = generate((200, 240), 6).image.astype(np.float32)
    config = tiny_config(smooth_noise_above=0.02, noise_smoothing_px=1.0)
    assert np.array_equal(channel_input("brightfield", image, config), normalize_percentile(image))  # clean: as is
    rng = np.random.default_rng(1)
    noisy = image + rng.normal(0, 0.06 * float(np.ptp(image)), image.shape).astype(np.float32)
    smoothed = channel_input("brightfield", noisy, config)
    assert noise_level(smoothed) < 0.5 * noise_level(normalize_percentile(noisy))
    assert np.array_equal(channel_input("brightfield", noisy, tiny_config()), normalize_percentile(noisy))  # 0: off
    assert np.array_equal(channel_input("fluorescence", noisy, config), normalize_percentile(noisy))


def test_the_user_is_told_when_an_image_was_smoothed(tmp_path):
    import torch

    from semiconv.inference import load_model
    from semiconv.model_folders import save_model_folder
    from semiconv.network import build_model

    torch.manual_seed(0)
    config = tiny_config(smooth_noise_above=0.02)
    save_model_folder(tmp_path / "m", build_model(config), config)
    model = load_model(tmp_path / "m", device="cpu")
    image = generate((128, 128), 7).image.astype(np.float32)
    assert model.network_input(image)[1] == []
    noisy = image + np.random.default_rng(2).normal(0, 0.06 * float(np.ptp(image)), image.shape).astype(np.float32)
    assert any("smoothed" in note for note in model.network_input(noisy)[1])
