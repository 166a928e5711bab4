"""Augmentation: the lower-magnification resampling (params["resample"])."""

import numpy as np

from semiconv.training.samples import augment

NO_GEOMETRY = {"flip": False, "rot90": False}


def neighbour_correlation(image: np.ndarray) -> float:
    """Correlation of horizontally adjacent pixels of a C x H x W image."""
    a, b = image[:, :, :-1].ravel(), image[:, :, 1:].ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_resampling_keeps_shape_and_masks_and_loses_fine_detail():
    rng = np.random.default_rng(0)
    stripes = np.zeros((1, 64, 64), np.float32)
    stripes[:, :, ::2] = 1.0  # detail at the pixel scale
    masks = np.zeros((2, 64, 64), bool)
    masks[0, 10:20, 10:40] = masks[1, 30:50, 5:9] = True
    plain, plain_masks = augment(stripes, masks, rng, NO_GEOMETRY, False)
    low, low_masks = augment(stripes, masks, rng, {**NO_GEOMETRY, "resample": (0.5, 0.5)}, False)
    assert low.shape == stripes.shape and low.dtype == np.float32
    np.testing.assert_array_equal(low_masks, masks)
    np.testing.assert_array_equal(plain, stripes)
    assert low.std() < 0.2 * plain.std()  # a camera with half the pixels cannot show 1-px stripes
    assert abs(low.mean() - plain.mean()) < 0.05


def test_noise_made_at_the_lower_magnification_comes_back_correlated():
    flat = np.full((1, 96, 96), 0.5, np.float32)
    masks = np.zeros((0, 96, 96), bool)
    noisy = {**NO_GEOMETRY, "noise": (0.05, 0.05)}
    white, _ = augment(flat, masks, np.random.default_rng(1), noisy, False)
    coarse, _ = augment(flat, masks, np.random.default_rng(1), {**noisy, "resample": (0.6, 0.6)}, False)
    assert abs(neighbour_correlation(white)) < 0.1
    assert neighbour_correlation(coarse) > 0.3


def test_resample_fraction_zero_leaves_the_crop_at_full_resolution():
    flat = np.full((1, 64, 64), 0.5, np.float32)
    masks = np.zeros((0, 64, 64), bool)
    noisy = {**NO_GEOMETRY, "noise": (0.05, 0.05)}
    never, _ = augment(flat, masks, np.random.default_rng(2), {**noisy, "resample": (0.6, 0.6), "resample_fraction": 0.0}, False)
    assert abs(neighbour_correlation(never)) < 0.1
