"""What a result was measured on: the machine and the versions of the packages that compute it."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

PACKAGES = ("rag_pet", "torch", "transformers", "peft", "ray", "deepspeed", "faiss-cpu", "faiss-gpu-cu12", "wandb")


def environment() -> dict:
    """Python, platform, CPU count, GPU (when torch sees one) and installed versions of the packages that compute."""
    import torch

    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "packages": versions,
    }
