"""`TrainContext` for a Ray Train worker (DDP over gloo or NCCL, set up by `TorchTrainer`)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from torch import nn


def worker_threads(assigned_cpus: float) -> int:
    """Intra-op threads for a worker holding `assigned_cpus`: the CPUs it holds, a fraction rounded up.

    Ray sets OMP_NUM_THREADS to the whole CPUs only, so a worker that left half a CPU to the index shards of its
    RAG run (1.5 of 2) computed on one thread while the shards, which search for milliseconds a step, idled."""
    return max(1, min(math.ceil(assigned_cpus - 1e-9), os.cpu_count() or 1))


class RayTrainContext:
    """Rank, device and checkpoint I/O of the current Ray Train worker."""

    def __init__(self) -> None:
        context = ray.train.get_context()
        self.rank = context.get_world_rank()
        self.local_rank = context.get_local_rank()
        self.world_size = context.get_world_size()
        self.device = ray.train.torch.get_device()
        torch.set_num_threads(worker_threads(ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)))

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return ray.train.torch.prepare_model(model)

    def all_reduce_mean(self, value: float) -> float:
        if self.world_size == 1 or not dist.is_initialized():
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.item() / self.world_size

    def broadcast(self, value: int) -> int:
        if self.world_size == 1 or not dist.is_initialized():
            return value
        tensor = torch.tensor([value], dtype=torch.int64, device=self.device)
        dist.broadcast(tensor, src=0)
        return int(tensor.item())

    def report(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        checkpoint = ray.train.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        ray.train.report(metrics, checkpoint=checkpoint)

    @contextmanager
    def latest_checkpoint(self) -> Iterator[Path | None]:
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            yield None
            return
        with checkpoint.as_directory() as directory:
            yield Path(directory)
