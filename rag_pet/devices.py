"""Where models run: the torch device a config asks for, and the precision it computes in there."""

from __future__ import annotations

import torch


def resolve_device(use_gpu: bool) -> torch.device:
    """cuda when asked for and present, else cpu."""
    return torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")


def has_native_bf16(device: torch.device) -> bool:
    """bf16 matmuls run natively: a CUDA device that supports bf16, or a CPU with avx512_bf16 or AMX (oneDNN).

    Elsewhere bf16 is emulated and slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(requested: str, device: torch.device) -> str:
    """`auto` becomes bf16 where the device has native bf16, else fp32; an explicit precision stays as it is."""
    if requested != "auto":
        return requested
    return "bf16" if has_native_bf16(device) else "fp32"


def autocast(device: torch.device, precision: str):
    """torch's autocast for a resolved precision (bf16 or fp16); a no-op context for fp32."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None)
