"""benchmarks/average_checkpoints.py: the mean of one run's weights."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from average_checkpoints import average_states  # noqa: E402


def test_floating_tensors_are_averaged_in_float32_and_integer_buffers_kept():
    a = {"w": torch.tensor([1.0, 2.0], dtype=torch.float16), "count": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "count": torch.tensor(7)}
    c = {"w": torch.tensor([2.0, 1.0]), "count": torch.tensor(9)}
    out = average_states([a, b, c])
    assert out["w"].dtype == torch.float32
    assert torch.allclose(out["w"], torch.tensor([2.0, 3.0]))
    assert out["count"].item() == 3


def test_weights_of_different_models_are_refused():
    with pytest.raises(ValueError, match="different tensors"):
        average_states([{"w": torch.zeros(2)}, {"v": torch.zeros(2)}])
