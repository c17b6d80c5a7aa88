"""Adapting a generator by config: a `peft` method, full fine-tuning, or frozen; and saving/reloading it."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import (
    AdaLoraConfig,
    AdaLoraModel,
    IA3Config,
    LoHaConfig,
    LoKrConfig,
    LoraConfig,
    PeftModel,
    PrefixTuningConfig,
    PromptEncoderConfig,
    PromptTuningConfig,
    TaskType,
    get_peft_model,
    load_peft_weights,
    set_peft_model_state_dict,
)
from peft import PeftConfig as PeftConfigBase
from safetensors.torch import load_file
from torch import nn
from transformers import PreTrainedModel

from rag_pet.config import PeftConfig
from rag_pet.errors import ConfigError

ALL_LINEAR = "all-linear"


def target_modules(config: PeftConfig) -> list[str] | str | None:
    """peft's `target_modules`: None = its per-architecture default; `[all-linear]` = every linear but the head."""
    if not config.target_modules:
        return None
    if list(config.target_modules) == [ALL_LINEAR]:
        return ALL_LINEAR
    return list(config.target_modules)


def build_peft_config(config: PeftConfig, is_seq2seq: bool, total_steps: int) -> PeftConfigBase:
    """The `peft` config object for `peft.method`, built by peft's own config class for that method."""
    task = TaskType.SEQ_2_SEQ_LM if is_seq2seq else TaskType.CAUSAL_LM
    targets = target_modules(config)
    lora = dict(
        task_type=task, r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout, target_modules=targets
    )
    builders = {
        "lora": lambda: LoraConfig(**lora),
        "dora": lambda: LoraConfig(**lora, use_dora=True),
        "adalora": lambda: AdaLoraConfig(  # ignores (and warns about) r: peft.r is its initial rank instead
            **{**lora, "r": 8},
            init_r=config.r,
            target_r=max(1, config.r // 2),
            total_step=total_steps,
            tinit=0,
            tfinal=0,
        ),
        "ia3": lambda: IA3Config(
            task_type=task, target_modules=targets, feedforward_modules=[] if targets == ALL_LINEAR else None
        ),
        "loha": lambda: LoHaConfig(task_type=task, r=config.r, alpha=config.alpha, target_modules=targets),
        "lokr": lambda: LoKrConfig(task_type=task, r=config.r, alpha=config.alpha, target_modules=targets),
        "prefix": lambda: PrefixTuningConfig(task_type=task, num_virtual_tokens=config.num_virtual_tokens),
        "prompt": lambda: PromptTuningConfig(task_type=task, num_virtual_tokens=config.num_virtual_tokens),
        "ptuning": lambda: PromptEncoderConfig(
            task_type=task, num_virtual_tokens=config.num_virtual_tokens, encoder_hidden_size=config.r * 8
        ),
    }
    return builders[config.method]()


def adapt_model(model: PreTrainedModel, config: PeftConfig, is_seq2seq: bool, total_steps: int = 1) -> nn.Module:
    """Wrap or freeze `model` so that exactly the parameters the method trains require grad."""
    if config.method == "full":
        model.requires_grad_(True)
        return model
    if config.method == "frozen":
        model.requires_grad_(False)
        return model
    try:
        return get_peft_model(model, build_peft_config(config, is_seq2seq, total_steps))
    except (ValueError, KeyError) as err:
        message = str(err).strip().splitlines()[0]
        arch = getattr(model.config, "model_type", "?")
        if "Please specify `target_modules`" in message:  # peft knows no default targets for this architecture
            raise ConfigError(
                "peft.method",
                config.method,
                f"a method peft supports for {arch} models (it has no default {config.method} targets for {arch};"
                " name them in peft.target_modules, e.g. [all-linear])",
            ) from None
        if "target_modules" in message or "Target modules" in message or "not found in the base model" in message:
            raise ConfigError(
                "peft.target_modules", config.target_modules, f"module names in the model ({message})"
            ) from None
        raise ConfigError(
            "peft.method", config.method, f"a method peft supports for {arch} models ({message})"
        ) from None


def prepends_virtual_tokens(model: nn.Module) -> bool:
    """Whether a peft prompt-learning method (prompt, prefix, p-tuning) wraps `model`: peft then prepends virtual
    tokens or a prefix, extends the labels by them, and drops `position_ids`."""
    model = unwrap(model)
    return isinstance(model, PeftModel) and model.active_peft_config.is_prompt_learning


def after_optimizer_step(model: nn.Module, step: int) -> None:
    """Per-step bookkeeping some methods need: AdaLoRA re-allocates ranks from the fresh gradients."""
    base = getattr(unwrap(model), "base_model", None)
    if isinstance(base, AdaLoraModel):
        base.update_and_allocate(step)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; a ZeRO-3 partitioned parameter counts its full size (`ds_numel`)."""
    sizes = [(getattr(p, "ds_numel", p.numel()), p.requires_grad) for p in model.parameters()]
    return sum(size for size, trains in sizes if trains), sum(size for size, _ in sizes)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP (or similar) wrapper."""
    return getattr(model, "module", model)


def save_trained(model: nn.Module, directory: Path) -> None:
    """Save what was trained: the adapter (PEFT) or the whole model (full), as safetensors."""
    unwrap(model).save_pretrained(directory, safe_serialization=True)


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that train, by name, detached on CPU (contiguous, as safetensors wants)."""
    return {n: p.detach().cpu().contiguous() for n, p in unwrap(model).named_parameters() if p.requires_grad}


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy a `trainable_state` back into the same model; every saved name must exist."""
    unexpected = unwrap(model).load_state_dict(state, strict=False).unexpected_keys
    if unexpected:
        raise ConfigError(
            "trainer.storage_path",
            "<checkpoint>",
            f"checkpoints written with this model and peft config (this one holds parameters the model lacks:"
            f" {unexpected[:3]})",
        )


def load_full_model_state(model: nn.Module, directory: Path) -> None:
    """Copy a fully fine-tuned model saved by `save_trained` back into an already built model (resume); every
    parameter must be in the saved files (a tied weight counts as saved with its twin)."""
    target = unwrap(model)
    loaded: set[str] = set()
    for shard in sorted(directory.glob("*.safetensors")):  # a large model is saved in several shards
        state = load_file(shard)
        target.load_state_dict(state, strict=False)
        loaded.update(state)
    expected = target.state_dict()
    loaded_storage = {expected[name].data_ptr() for name in loaded if name in expected}
    missing = [
        name for name, tensor in expected.items() if name not in loaded and tensor.data_ptr() not in loaded_storage
    ]
    if missing:
        raise ConfigError(
            "trainer.storage_path",
            str(directory),
            f"a checkpoint of this model configuration: the saved model lacks {', '.join(missing[:3])}",
        )


def continue_adapter(base: PreTrainedModel, directory: Path, config: PeftConfig, is_seq2seq: bool) -> PeftModel:
    """A saved adapter attached to `base` to train further; it must be an adapter of the configured method."""
    saved_file = Path(directory) / "adapter_config.json"
    if not saved_file.is_file():
        raise ConfigError(
            "trainer.init_from", str(directory), "the model directory of a PET run (<run_dir>/final_checkpoint/model)"
        )
    saved = PeftConfigBase.from_pretrained(str(directory))
    expected = build_peft_config(config, is_seq2seq, 1).peft_type
    if saved.peft_type != expected:
        allowed = f"an adapter of {expected.value} (it holds {saved.peft_type.value})"
        raise ConfigError("trainer.init_from", str(directory), allowed)
    # a new adapter of the saved config with the saved weights: PeftModel.from_pretrained(is_trainable=True)
    # refuses prompt-learning adapters (prompt, prefix, p-tuning)
    saved.inference_mode = False
    model = get_peft_model(base, saved)
    set_peft_model_state_dict(model, load_peft_weights(str(directory), device="cpu"))
    return model


def attach_adapter(base: PreTrainedModel, directory: Path) -> PeftModel:
    """A base model with a saved adapter attached, for inference."""
    return PeftModel.from_pretrained(base, directory, is_trainable=False)
