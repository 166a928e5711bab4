"""The one plane rule and the one grey conversion (semiconv.planes), shared by every entry point."""

import numpy as np
import pytest
import tifffile

from semiconv.errors import InputError
from semiconv.planes import first_plane, grey_plane, split_planes


def test_split_planes_by_shape_and_by_rgb_flag():
    assert len(split_planes(np.zeros((20, 30)))) == 1
    assert len(split_planes(np.zeros((20, 30, 3)))) == 1  # colour image
    stack = split_planes(np.arange(5 * 20 * 30).reshape(5, 20, 30))
    assert len(stack) == 5 and stack[2].shape == (20, 30) and stack[2][0, 0] == 2 * 600
    assert len(split_planes(np.zeros((2, 520, 696)))) == 2  # a 2-plane stack is not RGB
    assert len(split_planes(np.zeros((4, 20, 30, 3)))) == 4  # a stack of colour images
    # what napari says wins over the shape: a 3-plane stack 3 pixels wide, or RGB with 3 rows
    assert len(split_planes(np.zeros((3, 20, 3)), rgb=False)) == 3
    assert len(split_planes(np.zeros((3, 20, 3)), rgb=True)) == 1
    with pytest.raises(InputError, match="shape"):
        split_planes(np.zeros((2, 3, 20, 30)))
    with pytest.raises(InputError, match="shape"):
        split_planes(np.zeros(10))


def test_first_plane_is_the_first_of_split_planes():
    for image, rgb in ((np.arange(600).reshape(20, 30), None), (np.arange(3000).reshape(5, 20, 30), None),
                       (np.arange(7200).reshape(4, 20, 30, 3), None), (np.arange(180).reshape(3, 20, 3), False)):
        assert np.array_equal(first_plane(image, rgb), split_planes(image, rgb)[0])
    assert first_plane(np.zeros((5, 20, 30)), max_pixels=600) is not None
    assert first_plane(np.zeros((5, 20, 30)), max_pixels=599) is None
    with pytest.raises(InputError, match="shape"):
        first_plane(np.zeros((2, 3, 20, 30)))


def test_grey_plane_checks_and_converts():
    with pytest.raises(InputError, match="2-D"):
        grey_plane(np.zeros((2, 3, 4, 5)))
    with pytest.raises(InputError, match="NaN"):
        grey_plane(np.array([[0, np.nan]], dtype=np.float32))
    with pytest.raises(InputError, match="empty"):
        grey_plane(np.zeros((0, 5)))
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 1] = 100  # pure green: luminance weight 0.7154
    plane, converted = grey_plane(rgb)
    assert converted and plane.shape == (4, 5) and np.allclose(plane, 71.54)
    plane, converted = grey_plane(np.ones((4, 5), bool))
    assert not converted and plane.dtype == np.float32 and plane.max() == 1


def test_training_and_inference_see_the_same_grey(tmp_path):
    """An RGB training image becomes the same grey plane as the same image at inference."""
    from semiconv.config import ModelConfig
    from semiconv.data.generic import load_pair
    from semiconv.normalize import network_input

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    rgb[..., 0] = 255 - rgb[..., 2]  # channels differ, so a plain mean would not match luminance
    tifffile.imwrite(tmp_path / "img.tif", rgb)
    labels = np.zeros((40, 50), np.uint16)
    labels[5:15, 5:30] = 1
    tifffile.imwrite(tmp_path / "ann.tif", labels)
    item = load_pair(tmp_path / "img.tif", tmp_path / "ann.tif")
    config = ModelConfig()
    inference_plane, _ = grey_plane(rgb)
    assert np.array_equal(item.image, inference_plane)
    assert np.array_equal(network_input({"brightfield": item.image}, config), network_input({"brightfield": inference_plane}, config))
    assert not np.allclose(item.image, rgb.mean(-1))
