"""DeepSpeed ZeRO (stage 0-3, CPU offload) as a `TrainEngine`, configured from the `trainer` and `deepspeed` groups."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import OmegaConf
from torch import nn

from rag_pet.config import RagPetConfig
from rag_pet.errors import RagPetConfigError
from rag_pet.training.context import TrainContext
from rag_pet.training.engine import linear_schedule

DEEPSPEED_DIR = "deepspeed"
CHECKPOINT_TAG = "state"


def deepspeed_json(config: RagPetConfig) -> dict[str, Any]:
    """DeepSpeed's JSON config for this run, with `deepspeed.config` merged over it."""
    trainer, ds = config.trainer, config.deepspeed
    zero: dict[str, Any] = {"stage": ds.zero_stage}
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


def _ensure_process_group(device: torch.device) -> None:
    """A one-process group for standalone runs; Ray Train has already made one for its workers."""
    if dist.is_initialized():
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)


class DeepSpeedEngine:
    """`deepspeed.initialize` on this worker: ZeRO partitions optimizer state, gradients and (stage 3) parameters.

    Every rank writes its partition into the checkpoint directory (Ray Train merges the workers' directories);
    `rag_pet.training.export` consolidates them into a `save_pretrained` model or adapter.
    """

    saves_on_every_rank = True

    def __init__(self, model: nn.Module, config: RagPetConfig, ctx: TrainContext):
        os.environ.setdefault("DS_ACCELERATOR", "cuda" if ctx.device.type == "cuda" else "cpu")
        os.environ.setdefault("LOCAL_RANK", str(ctx.local_rank))  # what DeepSpeed's own launcher would set
        import deepspeed

        _ensure_process_group(ctx.device)
        self.engine, _, _, self.scheduler = deepspeed.initialize(
            model=model,
            model_parameters=[p for p in model.parameters() if p.requires_grad],
            lr_scheduler=linear_schedule(config.trainer),
            config=deepspeed_json(config),
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
            raise RagPetConfigError(
                "deepspeed.enabled", True, f"false, as in the run that wrote {directory}, or a new trainer.storage_path"
            )
        path, _ = self.engine.load_checkpoint(
            str(directory / DEEPSPEED_DIR), tag=CHECKPOINT_TAG, load_module_strict=not self.excludes_frozen
        )
        if path is None:
            raise FileNotFoundError(f"no DeepSpeed checkpoint under {directory / DEEPSPEED_DIR}")
