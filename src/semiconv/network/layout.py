"""Layout hand-overs for training on the CPU with channels-last activations.

oneDNN's bf16 convolutions run about twice as fast channels-last on the CPU, but GroupNorm's
bf16 kernels need NCHW (torch's channels-last bf16 GroupNorm backward is 4-13x slower), so
semiconv.network.norm hands each channels-last input over to NCHW and the result back.
`to_nchw` / `to_channels_last_copy` are those hand-overs as autograd functions whose
channels-last -> NCHW direction (forward of one, backward of the other) copies a band of rows at
a time: torch's copy of a large tensor that way round misses the cache (4 x 64 x 160 x 160 bf16:
17 ms whole, 4.5 ms in bands of 40 rows; the other way round 4 ms). The same numbers.
"""

from __future__ import annotations

import torch

BAND_BYTES = 4 << 20  # rows copied together in the channels-last -> NCHW direction: about 4 MiB


def nchw_copy(x: torch.Tensor) -> torch.Tensor:
    """N x C x H x W tensor (any layout) -> an NCHW-contiguous copy, made a band of rows at a time."""
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    n, c, h, w = x.shape
    rows = max(1, BAND_BYTES // max(1, n * c * w * x.element_size()))
    for top in range(0, h, rows):
        out[:, :, top:top + rows].copy_(x[:, :, top:top + rows])
    return out


class _ToNCHW(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return nchw_copy(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.contiguous(memory_format=torch.channels_last)


class _ToChannelsLast(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx, grad):
        return nchw_copy(grad)


def to_nchw(x: torch.Tensor) -> torch.Tensor:
    """Channels-last N x C x H x W -> NCHW copy (gradient handed back channels-last)."""
    return _ToNCHW.apply(x)


def to_channels_last_copy(x: torch.Tensor) -> torch.Tensor:
    """NCHW N x C x H x W -> channels-last copy (gradient handed back NCHW)."""
    return _ToChannelsLast.apply(x)
