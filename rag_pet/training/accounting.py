"""Cost accounting for a run: peak memory, a FLOPs estimate, and model FLOPs utilisation where the peak is known."""

from __future__ import annotations

import resource

import psutil
import torch

# Dense bf16/fp16 tensor-core peaks (FLOP/s) by device-name substring; others report no MFU.
PEAK_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12}


def peak_memory_bytes(device: torch.device) -> int:
    """Peak allocated GPU memory on CUDA; this process's peak resident memory (RSS) on CPU. The kernel updates the
    recorded peak (`ru_maxrss`, KiB on Linux) lazily, so it can lag the RSS of this moment: the larger counts."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, psutil.Process().memory_info().rss)


def memory_in_use_bytes(device: torch.device) -> int:
    """Memory held now: allocated GPU memory on CUDA; this process's resident memory (RSS) on CPU.

    Next to the peak, which also counts one-off loading transients, this is what training itself keeps resident.
    """
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    return psutil.Process().memory_info().rss


def training_flops(total_params: int, trainable_params: int, tokens: int) -> float:
    """Forward 2N and activation-gradient 2N FLOPs per token, plus 2 per trainable parameter for weight gradients.

    Full fine-tuning gives the usual 6N per token; adapters on a frozen base about 4N.
    """
    return float(tokens) * (4 * total_params + 2 * trainable_params)


def device_peak_flops(device: torch.device) -> float | None:
    """The accelerator's peak FLOP/s when it is one we know; None on CPU or unknown devices."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_FLOPS.items() if key in name), None)


def model_flops_utilisation(flops: float, seconds: float, world_size: int, peak: float | None) -> float | None:
    """Achieved FLOP/s over the summed peak of all workers."""
    if peak is None or seconds <= 0:
        return None
    return flops / seconds / (peak * world_size)
