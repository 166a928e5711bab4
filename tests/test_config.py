"""Configs refuse typos by name; the torchvision helpers the aligned RoI pooling relies on are there."""

import json

import pytest
import torch

from semiconv.config import ModelConfig, TrainConfig
from semiconv.errors import CheckpointError


def test_a_typo_in_a_training_config_is_an_error_naming_the_key():
    assert TrainConfig.from_dict({"steps": 10, "lr": 1e-3}).steps == 10
    with pytest.raises(ValueError, match="stpes"):
        TrainConfig.from_dict({"stpes": 10})
    with pytest.raises(CheckpointError, match="fpn_chanels"):
        ModelConfig.from_dict({"fpn_chanels": 64})


def test_train_command_refuses_an_unknown_setting_or_section(tmp_path):
    from helpers import run_cli

    for payload, word in (({"train": {"stpes": 3}}, "stpes"), ({"trian": {"steps": 3}}, "trian")):
        config = tmp_path / "c.json"
        config.write_text(json.dumps(payload))
        r = run_cli("train", "--data", tmp_path, "--out", tmp_path / "m", "--config", config)
        assert r.returncode == 2 and word in r.stderr and "Traceback" not in r.stderr


def test_every_shipped_recipe_config_loads():
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parent.parent / "benchmarks" / "configs").glob("*.json")):
        payload = json.loads(path.read_text())
        assert set(payload) <= {"model", "train"}, path
        TrainConfig.from_dict(payload.get("train", {}))
        if "model" in payload:
            ModelConfig.from_dict({**ModelConfig().to_dict(), **payload["model"]})


def test_aligned_roi_pooling_uses_torchvision_helpers_that_still_exist():
    """semiconv.network.pooling imports private torchvision.ops.poolers helpers; if torchvision moves
    them this fails here, by name, not deep inside a model."""
    from torchvision.ops import poolers, roi_align

    for name in ("_convert_to_roi_format", "_filter_input", "_setup_scales"):
        assert callable(getattr(poolers, name, None)), f"torchvision.ops.poolers.{name} is gone"
    from semiconv.network.pooling import AlignedMultiScaleRoIAlign

    pool = AlignedMultiScaleRoIAlign(["0", "1"], output_size=7, sampling_ratio=2)
    features = {"0": torch.randn(1, 3, 32, 32), "1": torch.randn(1, 3, 16, 16)}
    boxes = [torch.tensor([[4.0, 4.0, 20.0, 24.0], [0.0, 0.0, 120.0, 120.0]])]
    out = pool(features, boxes, [(128, 128)])
    assert out.shape == (2, 3, 7, 7)
    # the small box maps to the finer level (stride 4), sampled pixel-aligned
    rois = torch.cat([torch.zeros(1, 1), boxes[0][:1]], 1)
    expected = roi_align(features["0"], rois, 7, 0.25, 2, aligned=True)
    assert torch.allclose(out[:1], expected)
