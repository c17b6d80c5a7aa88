"""The per-worker train loop: one optimizer step after another on a task's batches, with logging and checkpoints.

The task (`closed_book`, `rag`, `retriever`) builds the model and its batches; the loop owns the engine (DDP or
DeepSpeed), resuming, accounting and checkpoint reporting, so every objective gets them the same way.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from rag_pet.config import RagPetConfig
from rag_pet.data import QAExample, load_qa_split
from rag_pet.errors import RagPetConfigError
from rag_pet.models import count_parameters
from rag_pet.training.accounting import (
    device_peak_flops,
    memory_in_use_bytes,
    model_flops_utilisation,
    peak_memory_bytes,
    training_flops,
)
from rag_pet.training.checkpoint import TrainState, read_state, write_state
from rag_pet.training.context import TrainContext
from rag_pet.training.deepspeed_engine import DeepSpeedEngine, partitioned_construction
from rag_pet.training.engine import TorchEngine, TrainEngine

logger = logging.getLogger(__name__)


def token_count(batch: dict[str, torch.Tensor]) -> int:
    """Tokens a micro-batch feeds through its models (every attention mask's ones)."""
    return sum(int(tensor.sum()) for name, tensor in batch.items() if name.endswith("attention_mask"))


def endless_batches(loader: DataLoader, sampler: DistributedSampler, start: int) -> Iterator:
    """Endless micro-batches in a seeded order, starting where a run that consumed `start` of them stopped."""
    first_epoch, offset = divmod(start, len(loader))
    for epoch in itertools.count(first_epoch):
        sampler.set_epoch(epoch)
        yield from itertools.islice(loader, offset, None)
        offset = 0


def distributed_loader(
    items: list, config: RagPetConfig, ctx: TrainContext, collate: Callable
) -> tuple[DataLoader, DistributedSampler]:
    """A seeded, sharded, shuffled loader of `items` that drops the last incomplete batch on every worker."""
    sampler = DistributedSampler(
        items, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=config.seed, drop_last=True
    )
    loader = DataLoader(
        items, batch_size=config.trainer.batch_size, sampler=sampler, collate_fn=collate, drop_last=True
    )
    return loader, sampler


def load_training_examples(config: RagPetConfig, world_size: int) -> list[QAExample]:
    """The training questions, checked to fill at least one batch on every worker."""
    examples = load_qa_split(config.data, config.data.train_split, config.data.max_train_examples)
    need = config.trainer.batch_size * world_size
    if len(examples) < need:
        raise RagPetConfigError("data.max_train_examples", len(examples), f">= trainer.batch_size x workers = {need}")
    return examples


def build_engine(model: nn.Module, config: RagPetConfig, ctx: TrainContext) -> TrainEngine:
    """DeepSpeed when `deepspeed.enabled`, else plain PyTorch (DDP under Ray Train with several workers)."""
    retriever_lr = config.rag.retriever_lr if config.objective == "rag" else None
    if config.deepspeed.enabled:
        return DeepSpeedEngine(model, config, ctx, retriever_lr)
    return TorchEngine(model, config.trainer, ctx, retriever_lr)


class TrainTask(Protocol):
    """What is trained and on which batches: closed-book generation, RAG, or the retriever alone."""

    model: nn.Module

    def micro_batches(self, start: int) -> Iterator[dict[str, torch.Tensor]]:
        """Endless micro-batches on the worker's device, resuming after `start` of them were consumed."""

    def restore(self, state: TrainState) -> None:
        """Pick up what a checkpoint's progress record says besides weights (e.g. the index version)."""

    def after_step(self, step: int) -> dict[str, float]:
        """Work between optimizer steps (re-indexing); extra metrics to log."""

    def close(self) -> None:
        """Release what the task holds outside this process (index actors, tasks)."""


class LoaderTask:
    """A task whose batches are ready-made tensors from `self.loader`; no work between steps."""

    model: nn.Module
    loader: DataLoader
    sampler: DistributedSampler
    device: torch.device

    def micro_batches(self, start: int) -> Iterator[dict[str, torch.Tensor]]:
        for batch in endless_batches(self.loader, self.sampler, start):
            yield {name: tensor.to(self.device) for name, tensor in batch.items()}

    def restore(self, state: TrainState) -> None:
        return None

    def after_step(self, step: int) -> dict[str, float]:
        return {}

    def close(self) -> None:
        return None


def build_task(config: RagPetConfig, ctx: TrainContext) -> TrainTask:
    """The task `config.objective` names."""
    if config.objective == "rag":
        from rag_pet.training.rag_task import RagTask

        return RagTask(config, ctx)
    if config.objective == "retriever":
        from rag_pet.training.retriever_task import RetrieverTask

        return RetrieverTask(config, ctx)
    from rag_pet.training.closed_book import ClosedBookTask

    return ClosedBookTask(config, ctx)


def run_train_loop(config: RagPetConfig, ctx: TrainContext) -> dict:
    """Train `config.objective` for `trainer.max_steps` optimizer steps, resuming from the latest checkpoint."""
    with partitioned_construction(config, ctx):
        torch.manual_seed(config.seed)
        task = build_task(config, ctx)
        try:
            return _train(config, ctx, task)
        finally:
            task.close()


def _train(config: RagPetConfig, ctx: TrainContext, task: TrainTask) -> dict:
    trainer = config.trainer
    trainable, total = count_parameters(task.model)
    engine = build_engine(task.model, config, ctx)
    state = TrainState()
    with ctx.latest_checkpoint() as checkpoint:
        if checkpoint is not None:
            engine.load(checkpoint)
            state = read_state(checkpoint)
            state.resumed_at.append(state.step)
            task.restore(state)
            logger.info("resumed from %s at step %d", checkpoint, state.step)
    state.trainable_params, state.total_params = trainable, total
    peak_flops = device_peak_flops(ctx.device)
    engine.model.train()
    micro_batches = task.micro_batches(state.step * trainer.grad_accum_steps)
    window_loss, window_steps, window_tokens, window_start = 0.0, 0, 0, time.perf_counter()
    while state.step < trainer.max_steps:
        step_batches = list(itertools.islice(micro_batches, trainer.grad_accum_steps))
        loss = engine.train_step(step_batches, state.step)
        state.step += 1
        extras = task.after_step(state.step)
        window_loss, window_steps = window_loss + loss, window_steps + 1
        window_tokens += sum(token_count(batch) for batch in step_batches)
        last = state.step == trainer.max_steps
        if state.step % trainer.log_every and state.step % trainer.checkpoint_every and not last:
            continue
        elapsed = time.perf_counter() - window_start
        tokens = round(ctx.all_reduce_mean(window_tokens) * ctx.world_size)
        state.train_seconds += elapsed
        state.tokens += tokens
        state.flops += training_flops(total, trainable, tokens)
        state.peak_memory_bytes = max(state.peak_memory_bytes, peak_memory_bytes(ctx.device))
        state.train_memory_bytes = memory_in_use_bytes(ctx.device)
        state.mfu = model_flops_utilisation(state.flops, state.train_seconds, ctx.world_size, peak_flops)
        record = {
            "step": state.step,
            "loss": ctx.all_reduce_mean(window_loss / window_steps),
            "lr": engine.learning_rate(),
            "tokens_per_s": tokens / elapsed,
            **extras,
        }
        state.index_version = extras.get("index_version", state.index_version)
        state.history.append(record)
        if ctx.rank == 0:
            logger.info(
                "step %d/%d  loss %.4f  lr %.2e  %.0f tokens/s",
                state.step,
                trainer.max_steps,
                record["loss"],
                record["lr"],
                record["tokens_per_s"],
            )
        metrics = {**record, "train_seconds": state.train_seconds, "peak_memory_bytes": state.peak_memory_bytes}
        _report(ctx, engine, state, metrics, save=last or state.step % trainer.checkpoint_every == 0)
        window_loss, window_steps, window_tokens, window_start = 0.0, 0, 0, time.perf_counter()
    return asdict(state)


def _report(ctx: TrainContext, engine: TrainEngine, state: TrainState, metrics: dict, save: bool) -> None:
    if not save:
        ctx.report(metrics, None)
        return
    with tempfile.TemporaryDirectory(prefix="rag_pet_ckpt_") as tmp:
        engine.save(Path(tmp), ctx.rank)
        if ctx.rank == 0:
            write_state(Path(tmp), state)
        writes = ctx.rank == 0 or engine.saves_on_every_rank
        ctx.report(metrics, Path(tmp) if writes else None)
