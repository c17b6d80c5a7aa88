"""Where models run: the torch device a config asks for, and the precision it computes in there."""

from __future__ import annotations

import copy

import torch
from torch import nn

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


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


def with_parameters_in(model: nn.Module, precision: str) -> nn.Module:
    """`model` itself when its parameters are in the precision's dtype, else a copy whose floating-point parameters
    are cast once (no per-step casting, as under autocast); buffers keep their dtype, as `from_pretrained(dtype=...)`
    keeps them (`model.to(torch.bfloat16)` would also round the rotary `inv_freq` to bf16). Tied weights stay tied."""
    dtype = DTYPES[precision]
    parameters = list(model.parameters())
    if all(p.dtype == dtype or not p.is_floating_point() for p in parameters):
        return model
    cast = {
        id(p): nn.Parameter(p.detach().to(dtype), requires_grad=p.requires_grad)
        for p in parameters
        if p.is_floating_point()
    }
    return copy.deepcopy(model, memo=cast)  # the memo stands in the cast parameters: the fp32 ones are never copied
