"""Adapting a generator by config: a `peft` method, full fine-tuning, or frozen; and saving/reloading it."""

from __future__ import annotations

from pathlib import Path

from peft import LoraConfig, PeftModel, TaskType, get_peft_model, set_peft_model_state_dict
from safetensors.torch import load_file
from torch import nn
from transformers import PreTrainedModel

from rag_pet.config import PeftConfig
from rag_pet.errors import RagPetConfigError

ADAPTER_FILE = "adapter_model.safetensors"
ALL_LINEAR = "all-linear"


def target_modules(config: PeftConfig) -> list[str] | str | None:
    """peft's `target_modules`: None = its per-architecture default; `[all-linear]` = every linear but the head."""
    if not config.target_modules:
        return None
    if list(config.target_modules) == [ALL_LINEAR]:
        return ALL_LINEAR
    return list(config.target_modules)


def build_peft_config(config: PeftConfig, is_seq2seq: bool) -> LoraConfig:
    """The `peft` config object for our config."""
    task = TaskType.SEQ_2_SEQ_LM if is_seq2seq else TaskType.CAUSAL_LM
    return LoraConfig(
        task_type=task,
        r=config.r,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=target_modules(config),
    )


def adapt_model(model: PreTrainedModel, config: PeftConfig, is_seq2seq: bool) -> nn.Module:
    """Wrap or freeze `model` so that exactly the parameters the method trains require grad."""
    if config.method == "full":
        model.requires_grad_(True)
        return model
    if config.method == "frozen":
        model.requires_grad_(False)
        return model
    try:
        return get_peft_model(model, build_peft_config(config, is_seq2seq))
    except ValueError as err:
        if "target_modules" in str(err) or "Target modules" in str(err):
            raise RagPetConfigError(
                "peft.target_modules", config.target_modules, f"module names present in the model ({err})"
            ) from None
        raise


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP (or similar) wrapper."""
    return getattr(model, "module", model)


def save_trained(model: nn.Module, directory: Path) -> None:
    """Save what was trained: the adapter (PEFT) or the whole model (full), as safetensors."""
    unwrap(model).save_pretrained(directory, safe_serialization=True)


def load_trained_state(model: nn.Module, directory: Path) -> None:
    """Copy weights saved by `save_trained` back into an already built model of the same shape (resume)."""
    model = unwrap(model)
    if isinstance(model, PeftModel):
        set_peft_model_state_dict(model, load_file(directory / ADAPTER_FILE))
        return
    for shard in sorted(directory.glob("*.safetensors")):
        model.load_state_dict(load_file(shard), strict=False)


def attach_adapter(base: PreTrainedModel, directory: Path) -> PeftModel:
    """A base model with a saved adapter attached, for inference."""
    return PeftModel.from_pretrained(base, directory, is_trainable=False)
