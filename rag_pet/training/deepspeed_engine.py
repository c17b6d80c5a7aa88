"""DeepSpeed ZeRO (stage 0-3, CPU offload) as a `TrainEngine`, configured from the `trainer` and `deepspeed` groups."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import OmegaConf
from torch import nn

from rag_pet.config import DeepSpeedConfig, TrainerConfig
from rag_pet.errors import ConfigError
from rag_pet.training.context import TrainContext
from rag_pet.training.engine import linear_schedule

DEEPSPEED_DIR = "deepspeed"
CHECKPOINT_TAG = "state"


def deepspeed_json(trainer: TrainerConfig, ds: DeepSpeedConfig, hidden_size: int | None = None) -> dict[str, Any]:
    """DeepSpeed's JSON config for this run, with `deepspeed.config` merged over it.

    With the model's `hidden_size`, bucket sizes follow the rule Hugging Face's Trainer uses for DeepSpeed's "auto"
    values (DeepSpeed's own defaults, 5e8 elements, allocate far more than a small model needs).
    """
    zero: dict[str, Any] = {"stage": ds.zero_stage}
    if hidden_size:
        zero["reduce_bucket_size"] = hidden_size * hidden_size
        if ds.zero_stage == 3:
            zero["stage3_prefetch_bucket_size"] = int(0.9 * hidden_size * hidden_size)
            zero["stage3_param_persistence_threshold"] = 10 * hidden_size
    if ds.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": trainer.use_gpu}
    if ds.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": trainer.use_gpu}
    generated = {
        "train_micro_batch_size_per_gpu": trainer.batch_size,
        "gradient_accumulation_steps": trainer.grad_accum_steps,
        "gradient_clipping": trainer.max_grad_norm,
        "zero_optimization": zero,
        "optimizer": {
            "type": "AdamW",
            "params": {"lr": trainer.lr, "weight_decay": trainer.weight_decay, "torch_adam": ds.torch_adam},
        },
        "bf16": {"enabled": trainer.precision == "bf16"},
        "fp16": {"enabled": trainer.precision == "fp16"},
        # torch's AdamW on offloaded states is slower than DeepSpeedCPUAdam, but needs no compiled op
        "zero_force_ds_cpu_optimizer": not ds.torch_adam,
        "steps_per_print": 2**31 - 1,
    }
    return OmegaConf.to_container(OmegaConf.merge(generated, ds.config), resolve=True)


def _prepare_runtime(ctx: TrainContext) -> None:
    """What DeepSpeed expects of its launcher: accelerator, LOCAL_RANK, and a process group (one of its own when
    standalone; Ray Train has already made one for its workers)."""
    os.environ.setdefault("DS_ACCELERATOR", "cuda" if ctx.device.type == "cuda" else "cpu")
    os.environ.setdefault("LOCAL_RANK", str(ctx.local_rank))
    if dist.is_initialized():
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = "nccl" if ctx.device.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)


@contextmanager
def partitioned_construction(
    trainer: TrainerConfig, ds: DeepSpeedConfig, ctx: TrainContext, seeded_from_config: bool
) -> Iterator[None]:
    """Under ZeRO-3, models built inside this block are partitioned as they are built (`deepspeed.zero.Init`,
    entered by transformers while an `HfDeepSpeedConfig` is alive), so no worker ever holds the whole model.

    Models `seeded_from_config` (tiny ones) are left whole: zero.Init draws their random initial weights in another
    order, and a seeded tiny model must be the same model under every engine.
    """
    if not (ds.enabled and ds.zero_stage == 3) or seeded_from_config:
        yield
        return
    _prepare_runtime(ctx)
    from transformers.integrations import HfDeepSpeedConfig

    zero3 = HfDeepSpeedConfig(deepspeed_json(trainer, ds))  # transformers holds it by weak reference: keep it alive
    try:
        yield
    finally:
        del zero3


class DeepSpeedEngine:
    """`deepspeed.initialize` on this worker: ZeRO partitions optimizer state, gradients and (stage 3) parameters.

    Every rank writes its partition into the checkpoint directory (Ray Train merges the workers' directories);
    `rag_pet.training.export` consolidates them into a `save_pretrained` model or adapter.
    """

    saves_on_every_rank = True

    def __init__(
        self, model: nn.Module, groups: list[dict], trainer: TrainerConfig, ds: DeepSpeedConfig, ctx: TrainContext
    ):
        """`groups`: the task's optimizer parameter groups."""
        _prepare_runtime(ctx)
        import deepspeed

        hidden_size = getattr(getattr(model, "config", None), "hidden_size", None)
        self.engine, _, _, self.scheduler = deepspeed.initialize(
            model=model,
            model_parameters=groups,
            lr_scheduler=linear_schedule(trainer),
            config=deepspeed_json(trainer, ds, hidden_size),
        )
        self.model = self.engine.module
        self.excludes_frozen = any(not p.requires_grad for p in model.parameters())

    def train_step(self, micro_batches: list[dict[str, torch.Tensor]], step: int) -> float:
        total = 0.0
        for batch in micro_batches:
            loss = self.engine(**batch).loss
            self.engine.backward(loss)
            self.engine.step()  # an optimizer step only at the accumulation boundary
            total += loss.item()
        return total / len(micro_batches)

    def learning_rate(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def save(self, directory: Path, rank: int) -> None:
        # frozen weights are rebuilt from the model source on resume and export; an adapter checkpoint stays small
        self.engine.save_checkpoint(
            str(directory / DEEPSPEED_DIR), tag=CHECKPOINT_TAG, exclude_frozen_parameters=self.excludes_frozen
        )

    def load(self, directory: Path) -> None:
        if not (directory / DEEPSPEED_DIR).is_dir():
            raise ConfigError(
                "deepspeed.enabled", True, f"false, as in the run that wrote {directory}, or a new trainer.storage_path"
            )
        path, _ = self.engine.load_checkpoint(
            str(directory / DEEPSPEED_DIR), tag=CHECKPOINT_TAG, load_module_strict=not self.excludes_frozen
        )
        if path is None:
            raise ConfigError(
                "trainer.storage_path",
                str(directory.parent),
                f"a run directory whose checkpoints hold DeepSpeed states ({directory / DEEPSPEED_DIR} has none)",
            )
