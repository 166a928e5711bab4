"""Inference arithmetic: fp32 by default, bf16 autocast on request where the device computes it."""

import numpy as np
import pytest
import torch
from helpers import tiny_config

from semiconv.errors import InputError
from semiconv.inference import SemiConvModel, resolve_precision
from semiconv.network import build_model
from semiconv.precision import bf16_supported


def test_precision_choices():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32"
    assert resolve_precision("auto", cpu) == ("bf16" if bf16_supported(cpu) else "fp32")
    with pytest.raises(InputError, match="precision must be one of"):
        resolve_precision("fp16", cpu)
    if not bf16_supported(cpu):
        with pytest.raises(InputError, match="natively"):
            resolve_precision("bf16", cpu)


@pytest.mark.skipif(not bf16_supported(torch.device("cpu")), reason="this CPU does not compute bf16 natively")
def test_bf16_runs_the_network_in_bf16_and_gives_a_prediction():
    from semiconv.data.synthetic import generate

    torch.manual_seed(0)
    cfg = tiny_config(score_threshold=0.0)
    image = generate((96, 96), 1).image
    seen = []
    network = build_model(cfg)
    network.backbone.body.conv1.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    fp32 = SemiConvModel(network, cfg, torch.device("cpu")).predict(image, dense=False)
    bf16 = SemiConvModel(network, cfg, torch.device("cpu"), precision="bf16").predict(image, dense=False)
    assert seen == [torch.float32, torch.bfloat16]
    assert bf16.masks.shape[1:] == fp32.masks.shape[1:] == (96, 96) and np.isfinite(bf16.scores).all()
