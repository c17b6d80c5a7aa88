"""The per-worker train loop: one optimizer step after another on a task's batches, with logging and checkpoints.

The task builds the model and its batches, the engine (DDP or DeepSpeed) takes the steps; the loop owns resuming,
accounting and checkpoint decisions, so every objective gets them the same way.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from rag_pet.config import TrainerConfig
from rag_pet.models import count_parameters
from rag_pet.training.accounting import (
    device_peak_flops,
    memory_in_use_bytes,
    model_flops_utilisation,
    peak_memory_bytes,
    training_flops,
)
from rag_pet.training.batching import token_count
from rag_pet.training.checkpoint import TrainState, read_state, write_state
from rag_pet.training.context import TrainContext
from rag_pet.training.engine import TrainEngine
from rag_pet.training.task import TrainTask

logger = logging.getLogger(__name__)


def train(task: TrainTask, engine: TrainEngine, trainer: TrainerConfig, ctx: TrainContext) -> dict:
    """Train `task` with `engine` for `trainer.max_steps` optimizer steps, resuming from the latest checkpoint; the
    final progress record as a dict."""
    trainable, total = count_parameters(task.model)
    state = _resume(task, engine, ctx)
    state.trainable_params, state.total_params = trainable, total
    state.precision = trainer.precision
    peak_flops = device_peak_flops(ctx.device)
    engine.model.train()
    micro_batches = task.micro_batches(state.step * trainer.grad_accum_steps)
    window_loss, window_steps, window_tokens, window_start = 0.0, 0, 0, time.perf_counter()
    steps_started, wall_before = window_start, state.wall_seconds
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
        state.wall_seconds = wall_before + time.perf_counter() - steps_started
        state.tokens += tokens
        state.flops += training_flops(total, trainable, tokens)
        state.train_memory_bytes = memory_in_use_bytes(ctx.device)
        state.peak_memory_bytes = max(state.peak_memory_bytes, peak_memory_bytes(ctx.device))
        state.mfu = model_flops_utilisation(state.flops, state.train_seconds, ctx.world_size, peak_flops)
        record = {
            "step": state.step,
            "loss": ctx.all_reduce_mean(window_loss / window_steps),
            "lr": engine.learning_rate(),
            "tokens_per_s": tokens / elapsed,
            **extras,
        }
        state.task_fields.update(extras)
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


def _resume(task: TrainTask, engine: TrainEngine, ctx: TrainContext) -> TrainState:
    """The progress record of the latest checkpoint, with its weights and optimizer state loaded; else a fresh one."""
    with ctx.latest_checkpoint() as checkpoint:
        if checkpoint is None:
            return TrainState()
        engine.load(checkpoint)
        state = read_state(checkpoint)
        state.resumed_at.append(state.step)
        task.restore(state)
        logger.info("resumed from %s at step %d", checkpoint, state.step)
        return state


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
