"""GroupNorm that keeps torch's fast CPU kernel for bf16 channels-last activations.

torch's GroupNorm backward on bf16 channels-last tensors is 4-13x slower on the CPU than on
the same tensor in NCHW layout (2026-11-30, torch 2.14: 45 vs 6 ms for 4 x 16 x 320 x 320).
This subclass normalises such input in NCHW layout and hands the result back channels-last:
the same numbers, the same parameters and state-dict keys as nn.GroupNorm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layout import to_channels_last_copy, to_nchw


class GroupNorm(nn.GroupNorm):
    """nn.GroupNorm; bf16 channels-last input on the CPU is normalised in NCHW layout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.bfloat16 and x.device.type == "cpu" and x.dim() == 4 \
                and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            y = F.group_norm(to_nchw(x), self.num_groups, self.weight, self.bias, self.eps)
            return to_channels_last_copy(y)
        return super().forward(x)
