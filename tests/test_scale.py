"""Images at another magnification (semiconv.scale): resampled to the model's scale, results back."""

import re
import warnings

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

import semiconv
from semiconv.cli import app
from semiconv.data import Bbbc010Folder
from semiconv.metrics import mask_iou
from semiconv.scale import (
    factor_from_length,
    factor_from_pixel_size,
    factor_from_width,
    resample_plane,
    scale_warning,
    segment_plane,
    typical_worm_length,
    worm_lengths,
)
from semiconv.segment import segment_file


@pytest.fixture(scope="module")
def model():
    return semiconv.load_model("bbbc010-brightfield", device="cpu")


@pytest.fixture(scope="module")
def well(sample_root):
    return Bbbc010Folder(sample_root / "bbbc010").load("C01")


def test_factors_and_warning_rules(model):
    config = model.config
    assert config.worm_width_px > 5
    assert factor_from_width(config, config.worm_width_px * 2) == pytest.approx(0.5)
    assert factor_from_width(config, 0.0) is None
    assert factor_from_pixel_size(config, 1.3) is None  # the bundled model does not know its pixel size
    assert scale_warning(config, config.worm_width_px * 1.1) is None
    line = scale_warning(config, config.worm_width_px * 2)
    assert "px wide" in line and "auto" in line and "\n" not in line


def test_worm_lengths_measure_centre_lines():
    masks = np.zeros((3, 60, 80), bool)
    masks[0, 20:27, 10:70] = True  # a straight worm 60 px long, 7 px wide
    masks[1, 5:50, 40:46] = True  # 45 px long
    rows, cols = np.nonzero(masks[0])
    assert worm_lengths(masks)[0] == pytest.approx(60, abs=8)  # the skeleton stops short of the ends
    assert worm_lengths(masks)[1] == pytest.approx(45, abs=8) and worm_lengths(masks)[2] == 0
    assert typical_worm_length([masks[:2], masks[:1], masks[:0]]) == pytest.approx(np.median(
        [np.median(worm_lengths(masks[:2])), worm_lengths(masks[:1])[0]]))


def test_length_decides_where_width_does_not(model):
    """Another microscope's blur makes its worms look as wide as the model's at 0.8x: their
    length still tells the scale, for the factor and for the warning."""
    config = model.config
    assert 80 < config.worm_length_px < 150
    assert factor_from_length(config, config.worm_length_px * 0.8) == pytest.approx(1.25)
    assert factor_from_length(config, 0.0) is None
    line = scale_warning(config, config.worm_width_px, 1.0, config.worm_length_px * 0.75)
    assert line is not None and "px long" in line and "\n" not in line
    assert scale_warning(config, config.worm_width_px, 1.0, config.worm_length_px * 0.95) is None


def test_warning_follows_the_rule_auto_acts_on(model):
    """Worms a little too wide and too long on both cues (1.24x, 1.16x: each within 1.25x, a
    combined correction of 0.83) warn, as 'auto' would resample them; 1.1x on both does not,
    and once resampled by the factor that brings them to the model's size, neither warns."""
    config = model.config
    width, length = config.worm_width_px * 1.24, config.worm_length_px * 1.16
    assert scale_warning(config, width, 1.0, length) is not None
    assert scale_warning(config, config.worm_width_px * 1.1, 1.0, config.worm_length_px * 1.1) is None
    assert scale_warning(config, width, 1 / np.sqrt(1.24 * 1.16), length) is None


def test_auto_rescale_of_an_enlarged_image_matches_the_native_result(model, well):
    """C01 enlarged 1.6x (worms 1.6x wider than the model's): a plain pass warns; 'auto' measures
    the worms, segments at about 1/1.6 and returns masks in the enlarged image's pixels that
    agree with the native result enlarged."""
    native = model.predict(well.brightfield, dense=False)
    big = resample_plane(well.brightfield.astype(np.float32), 1.6)
    _, factor, warning = segment_plane(model, big, 1.0, dense=False)
    assert factor == 1.0 and warning is not None
    pred, factor, warning = segment_plane(model, big, None, dense=True)  # auto by default
    assert factor == pytest.approx(1 / 1.6, rel=0.12) and warning is None
    assert pred.masks.shape[1:] == big.shape and pred.labels.shape == big.shape
    assert pred.embedding.shape[1:] == big.shape and pred.displacement.shape[1:] == big.shape
    expected = resample_plane(native.masks.astype(np.float32), 1.6) > 0.5
    iou = mask_iou(pred.masks, expected)
    best = iou.max(1)
    assert len(pred.masks) >= len(native.masks) - 1 and np.median(best) > 0.8


def test_cli_rescale_option(sample_root, tmp_path):
    image = next((sample_root / "bbbc010" / "BBBC010_v1_images").glob("*C01*_w2_*"))
    big = tmp_path / "big.tif"
    tifffile.imwrite(big, resample_plane(tifffile.imread(image).astype(np.float32), 1.6).astype(np.uint16))
    runner = CliRunner()
    plain = runner.invoke(app, ["segment", str(big), "--out", str(tmp_path / "plain"), "--rescale", "1"])
    assert plain.exit_code == 0 and "px wide" in plain.output and "resampled" not in plain.output
    scaled = runner.invoke(app, ["segment", str(big), "--out", str(tmp_path / "auto")])  # auto by default
    factor = float(re.search(r"resampled x([0-9.]+)", scaled.output)[1])
    assert scaled.exit_code == 0 and 0.55 <= factor <= 0.7 and "px wide" not in scaled.output  # about 1 / 1.6
    assert tifffile.imread(tmp_path / "auto" / "big_instances.tif").shape[1:] == tifffile.imread(big).shape
    bad = runner.invoke(app, ["segment", str(big), "--out", str(tmp_path / "bad"), "--rescale", "huge"])
    assert bad.exit_code != 0 and "--rescale" in bad.output
    far = runner.invoke(app, ["segment", str(big), "--out", str(tmp_path / "far"), "--rescale", "9"])
    assert far.exit_code == 2 and "outside" in far.output


def test_rescale_keeps_warnings_of_other_kinds_quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resample_plane(np.ones((10, 12), np.float32), 0.5).shape == (5, 6)


def test_auto_keeps_native_images_as_they_are_and_a_stack_at_one_factor(model, well, tmp_path):
    """The default: a native image is segmented once, as is (same result as rescale 1); a stack
    enlarged 1.6x is segmented at one factor, chosen on its first plane with worms."""
    native, factor, warning = segment_plane(model, well.brightfield, None, dense=False)
    as_is, _, _ = segment_plane(model, well.brightfield, 1.0, dense=False)
    assert factor == 1.0 and warning is None and np.array_equal(native.labels, as_is.labels)
    big = resample_plane(well.brightfield.astype(np.float32), 1.6)
    stack = np.stack([np.full_like(big, big.mean()), big, big[:, ::-1]]).astype(np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        segment_file(model, tmp_path / "stack.tif", tmp_path / "out")
    factors = [re.search(r"plane (\d+): segmented resampled x([0-9.]+)", str(w.message)) for w in caught]
    factors = {int(m[1]): float(m[2]) for m in factors if m}
    assert set(factors) == {1, 2} and factors[1] == factors[2] and 0.55 <= factors[1] <= 0.7
