"""How a train loop meets its runtime: rank, device, model wrapping, reduction, checkpoint reporting.

The loop only talks to a `TrainContext`, so the same function runs standalone (`LocalContext`, for
debugging and GPU benchmarks) and under Ray Train (`rag_pet.training.ray_context.RayTrainContext`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from rag_pet.storage import atomic_directory

CHECKPOINT_PREFIX = "checkpoint_"


class TrainContext(Protocol):
    """What the train loop needs to know about where it runs."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Move to the device and wrap for data parallelism where there are several workers."""

    def all_reduce_mean(self, value: float) -> float:
        """Mean of `value` over workers."""

    def broadcast(self, value: int) -> int:
        """Rank 0's `value`, on every worker."""

    def report(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        """Publish metrics and, from rank 0, a checkpoint directory (copied before this returns)."""

    def latest_checkpoint(self) -> AbstractContextManager[Path | None]:
        """Context manager yielding the directory of the newest checkpoint, or None on a fresh run."""


def checkpoint_name(step: int) -> str:
    """Directory name of the checkpoint taken after `step` optimizer steps."""
    return f"{CHECKPOINT_PREFIX}{step:08d}"


class LocalContext:
    """One process, no Ray: checkpoints go atomically to `<storage>/checkpoint_<step>`, newest `keep` kept."""

    rank = 0
    local_rank = 0
    world_size = 1

    def __init__(self, storage: Path, device: torch.device, keep: int = 2):
        self.storage, self.device, self.keep = Path(storage), device, keep
        self.reports: list[dict] = []

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model.to(self.device)

    def all_reduce_mean(self, value: float) -> float:
        return value

    def broadcast(self, value: int) -> int:
        return value

    def report(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        self.reports.append(dict(metrics))
        if checkpoint_dir is None:
            return
        with atomic_directory(self.storage / checkpoint_name(int(metrics["step"]))) as staging:
            shutil.copytree(checkpoint_dir, staging, dirs_exist_ok=True)
        for old in self.checkpoints()[: -self.keep]:
            shutil.rmtree(old)

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        return sorted(self.storage.glob(f"{CHECKPOINT_PREFIX}*")) if self.storage.is_dir() else []

    @contextmanager
    def latest_checkpoint(self) -> Iterator[Path | None]:
        found = self.checkpoints()
        yield found[-1] if found else None
