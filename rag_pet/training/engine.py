"""How one optimizer step is taken and its state saved: plain PyTorch (single process or DDP) behind a small protocol.

The train loop asks an engine for a step over a list of micro-batches and for checkpoints; it does not know whether
gradients are all-reduced by DDP or partitioned by DeepSpeed ZeRO (`rag_pet.training.deepspeed_engine`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from transformers import get_linear_schedule_with_warmup

from rag_pet.config import TrainerConfig
from rag_pet.devices import autocast, resolve_precision
from rag_pet.errors import ConfigError
from rag_pet.models.adaptation import after_optimizer_step
from rag_pet.training.checkpoint import load_weights, save_model_files
from rag_pet.training.context import TrainContext

OPTIMIZER_FILE = "optimizer.pt"


class TrainEngine(Protocol):
    """One optimizer step at a time, and the checkpoint state that goes with it."""

    model: nn.Module
    saves_on_every_rank: bool

    def train_step(self, micro_batches: list[dict[str, torch.Tensor]], step: int) -> float:
        """Forward/backward every micro-batch, then one optimizer and scheduler step; the mean loss."""

    def learning_rate(self) -> float:
        """The scheduler's current learning rate."""

    def save(self, directory: Path, rank: int) -> None:
        """Write weights, optimizer and scheduler into `directory` (on rank 0, or on every rank if sharded)."""

    def load(self, directory: Path) -> None:
        """Restore what `save` wrote."""


def linear_schedule(trainer: TrainerConfig) -> Callable[[torch.optim.Optimizer], LambdaLR]:
    """Factory of the linear warmup/decay schedule both engines use."""
    return lambda optimizer: get_linear_schedule_with_warmup(optimizer, trainer.warmup_steps, trainer.max_steps)


class TorchEngine:
    """AdamW + linear schedule on a model prepared by the context (moved to its device, DDP-wrapped if distributed).

    Gradient accumulation skips DDP's all-reduce on all but the last micro-batch (`no_sync`); bf16 runs under
    autocast; fp16 (GPU) scales the loss with `torch.amp.GradScaler`.
    """

    saves_on_every_rank = False

    def __init__(self, model: nn.Module, groups: list[dict], trainer: TrainerConfig, ctx: TrainContext):
        """`groups`: the task's optimizer parameter groups."""
        self.trainer, self.device = trainer, ctx.device
        self.model = ctx.prepare_model(model)
        self.optimizer = torch.optim.AdamW(groups, lr=trainer.lr, weight_decay=trainer.weight_decay)
        self.scheduler = linear_schedule(trainer)(self.optimizer)
        self.precision = resolve_precision(trainer.precision, ctx.device)
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=self.precision == "fp16")

    def train_step(self, micro_batches: list[dict[str, torch.Tensor]], step: int) -> float:
        total = 0.0
        for index, batch in enumerate(micro_batches):
            last = index == len(micro_batches) - 1
            sync = nullcontext() if last or not hasattr(self.model, "no_sync") else self.model.no_sync()
            with sync:
                with autocast(self.device, self.precision):
                    loss = self.model(**batch).loss / len(micro_batches)
                self.scaler.scale(loss).backward()
            total += loss.item()
        if self.trainer.max_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.trainer.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        after_optimizer_step(self.model, step)
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total

    def learning_rate(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def save(self, directory: Path, rank: int) -> None:
        if rank != 0:
            return
        save_model_files(directory, self.model)
        states = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
        }
        torch.save(states, directory / OPTIMIZER_FILE)

    def load(self, directory: Path) -> None:
        if not (directory / OPTIMIZER_FILE).is_file():
            raise ConfigError(
                "deepspeed.enabled", False, f"true, as in the run that wrote {directory}, or a new trainer.storage_path"
            )
        load_weights(directory, self.model)
        states = torch.load(directory / OPTIMIZER_FILE, weights_only=True, map_location="cpu")
        self.optimizer.load_state_dict(states["optimizer"])
        self.scheduler.load_state_dict(states["scheduler"])
        if states.get("scaler"):
            self.scaler.load_state_dict(states["scaler"])
