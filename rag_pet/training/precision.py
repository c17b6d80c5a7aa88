"""Which precision a training run takes on the device it landed on (`trainer.precision=auto`)."""

from __future__ import annotations

import torch


def has_native_bf16(device: torch.device) -> bool:
    """bf16 matmuls run natively: a CUDA device that supports bf16, or a CPU with avx512_bf16 or AMX (oneDNN).

    Elsewhere bf16 is emulated and slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(requested: str, device: torch.device) -> str:
    """`auto` becomes bf16 (autocast; DeepSpeed's bf16 mode) where the device has native bf16, else fp32; an explicit
    precision stays as it is."""
    if requested != "auto":
        return requested
    return "bf16" if has_native_bf16(device) else "fp32"
