"""What the train loop trains: a task owns the model, its optimizer groups and its batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from rag_pet.training.batching import endless_batches
from rag_pet.training.checkpoint import TrainState


class TrainTask(Protocol):
    """What is trained and on which batches: closed-book generation, RAG, or the retriever alone."""

    model: nn.Module

    def parameter_groups(self) -> list[dict]:
        """The trainable parameters as optimizer groups (a group may set its own `lr`)."""

    def micro_batches(self, start: int) -> Iterator[dict[str, torch.Tensor]]:
        """Endless micro-batches on the worker's device, resuming after `start` of them were consumed."""

    def restore(self, state: TrainState) -> None:
        """Pick up what a checkpoint's progress record says besides weights (its `task_fields`)."""

    def after_step(self, step: int) -> dict[str, float]:
        """Work between optimizer steps (re-indexing); fields to log and to keep in the progress record."""

    def close(self) -> None:
        """Release what the task holds outside this process (index actors, tasks)."""


def trainable_parameters(model: nn.Module) -> list[dict]:
    """Every parameter that requires a gradient, as one optimizer group."""
    return [{"params": [p for p in model.parameters() if p.requires_grad]}]


class LoaderTask:
    """A task whose batches are ready-made tensors from a loader; one optimizer group; no work between steps."""

    def __init__(self, model: nn.Module, loader: DataLoader, sampler: DistributedSampler, device: torch.device):
        self.model, self.loader, self.sampler, self.device = model, loader, sampler, device

    def parameter_groups(self) -> list[dict]:
        return trainable_parameters(self.model)

    def micro_batches(self, start: int) -> Iterator[dict[str, torch.Tensor]]:
        for batch in endless_batches(self.loader, self.sampler, start):
            yield {name: tensor.to(self.device) for name, tensor in batch.items()}

    def restore(self, state: TrainState) -> None:
        return None

    def after_step(self, step: int) -> dict[str, float]:
        return {}

    def close(self) -> None:
        return None
