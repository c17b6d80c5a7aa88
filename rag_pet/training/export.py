"""Consolidate a DeepSpeed checkpoint (ZeRO partitions of every rank) into the `model/` export of a checkpoint.

The result is what an unsharded run writes: `save_pretrained` of the adapter (PEFT) or of the whole model (full
fine-tuning), as safetensors, so evaluation and serving load any run the same way.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from rag_pet.errors import ConfigError
from rag_pet.models import save_trained
from rag_pet.storage import atomic_directory
from rag_pet.training.checkpoint import MODEL_DIR
from rag_pet.training.deepspeed_engine import CHECKPOINT_TAG, DEEPSPEED_DIR


def consolidated_state_dict(checkpoint: Path, zero_stage: int) -> dict[str, torch.Tensor]:
    """Full-precision parameters by name, merged from every rank's partition (DeepSpeed's `zero_to_fp32`)."""
    directory = checkpoint / DEEPSPEED_DIR
    if zero_stage == 0:  # nothing is partitioned: the module's state is in the rank-0 model file
        states = torch.load(directory / CHECKPOINT_TAG / "mp_rank_00_model_states.pt", weights_only=True)
        return states["module"]
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    return get_fp32_state_dict_from_zero_checkpoint(str(directory), tag=CHECKPOINT_TAG)


def export_deepspeed_checkpoint(checkpoint: Path, model: nn.Module, zero_stage: int) -> Path:
    """Write `<checkpoint>/model/` from the checkpoint's DeepSpeed states, put into `model` (freshly built, frozen
    weights loaded); return that directory."""
    state = consolidated_state_dict(checkpoint, zero_stage)
    trained = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    missing = [name for name in trained if name not in state]
    if missing:
        raise ConfigError(
            "trainer.storage_path",
            str(checkpoint.parent),
            f"checkpoints written with this model and peft config ({checkpoint} lacks trained parameters such as"
            f" {missing[:3]})",
        )
    model.load_state_dict({name: state[name] for name in trained}, strict=False)
    with atomic_directory(checkpoint / MODEL_DIR) as staging:
        save_trained(model, staging)
    return checkpoint / MODEL_DIR
