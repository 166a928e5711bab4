"""Memory layout for training on the CPU: channels-last activations, except the ResNet stem.

oneDNN's bf16 convolutions run about twice as fast channels-last on the CPU, but GroupNorm's
bf16 kernels need NCHW (semiconv.network.norm hands each channels-last input over and back).
In the stem that hand-over is the largest layout copy of a step (4 x 64 x 160 x 160 after the
first convolution, both ways, forward and backward); kept in NCHW, the stem's convolution,
GroupNorm, ReLU and max-pool need no hand-over and only the pooled map (4x fewer pixels) is
turned channels-last. The same numbers and parameters; state-dict keys unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelsLastMaxPool(nn.MaxPool2d):
    """nn.MaxPool2d whose output is channels-last: the stem's hand-over to the layers after it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).contiguous(memory_format=torch.channels_last)


def to_channels_last(network: nn.Module) -> nn.Module:
    """`network.to(memory_format=torch.channels_last)`, the backbone's stem kept NCHW (in place)."""
    network.to(memory_format=torch.channels_last)
    body = getattr(getattr(network, "backbone", None), "body", None)
    if body is None or not isinstance(getattr(body, "maxpool", None), nn.MaxPool2d):
        return network
    # clone, not contiguous(): a 64 x 1 x 7 x 7 weight counts as contiguous in both layouts, and
    # torch would still read its channels-last strides as a request for channels-last output
    body.conv1.weight.data = body.conv1.weight.data.clone(memory_format=torch.contiguous_format)
    pool = body.maxpool
    body.maxpool = ChannelsLastMaxPool(pool.kernel_size, pool.stride, pool.padding, pool.dilation,
                                       pool.return_indices, pool.ceil_mode)
    return network
