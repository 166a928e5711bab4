"""Which arithmetic a device trains (or predicts) in: bf16 autocast where the hardware has it."""

from __future__ import annotations

from functools import lru_cache

import torch


@lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def bf16_supported(device: torch.device) -> bool:
    """Whether `device` computes bf16 natively: a CUDA GPU with bf16, or a CPU with AVX-512 BF16 or
    AMX (on CPUs without them oneDNN emulates bf16, slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        native = bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})
        return native and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return False


def use_bf16(setting: bool | None, device: torch.device) -> bool:
    """The autocast choice for a training: `setting` when given (True/False), else (None, "auto")
    bf16 exactly where `bf16_supported(device)`."""
    return bf16_supported(device) if setting is None else bool(setting)
