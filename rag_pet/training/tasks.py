"""The training loop of one worker: the task `config.objective` declares (rag_pet/objectives), its engine, and the
loop run on them.

The one training module that reads the whole `RagPetConfig`; the tasks, engines and loop below it take sections.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Protocol

import torch
from torch import nn

from rag_pet.config import RagPetConfig, to_config
from rag_pet.devices import resolve_precision
from rag_pet.training.context import TrainContext
from rag_pet.training.deepspeed_engine import DeepSpeedEngine, partitioned_construction
from rag_pet.training.engine import TorchEngine, TrainEngine
from rag_pet.training.loop import train
from rag_pet.training.task import TrainTask


def build_engine(task: TrainTask, config: RagPetConfig, ctx: TrainContext) -> TrainEngine:
    """DeepSpeed when `deepspeed.enabled`, else plain PyTorch (DDP under Ray Train with several workers)."""
    if config.deepspeed.enabled:
        return DeepSpeedEngine(task.model, task.parameter_groups(), config.trainer, config.deepspeed, ctx)
    return TorchEngine(task.model, task.parameter_groups(), config.trainer, ctx)


class TrainingObjective(Protocol):
    """What training asks of the objective a run trains (`rag_pet.objectives.Objective` implements it). The layer
    that knows the objectives passes it in (`rag_pet.objectives.objective_of`), so training imports none of them."""

    def build_task(self, config: RagPetConfig, ctx: TrainContext) -> TrainTask:
        """The objective's training task on this worker."""

    def build_model(self, config: RagPetConfig) -> nn.Module:
        """The module the objective trains, freshly built (trained parameters initialised, frozen ones loaded)."""

    def preflight(self, config: RagPetConfig) -> None:
        """Check or prepare, once before any worker starts, what the objective needs (data, model, index)."""

    def reserved_cpus(self, config: RagPetConfig) -> float:
        """CPUs the run's own actors need besides the workers (RAG's index shards and re-indexing encoder)."""


def run_train_loop(config: RagPetConfig, ctx: TrainContext, objective: TrainingObjective) -> dict:
    """Train `objective` as `config` says for `trainer.max_steps` optimizer steps, resuming from the latest
    checkpoint; runs standalone with a `LocalContext` or inside a Ray Train worker."""
    trainer = replace(config.trainer, precision=resolve_precision(config.trainer.precision, ctx.device))
    config = replace(config, trainer=trainer)
    tiny = config.model.source == "tiny"
    with partitioned_construction(config.trainer, config.deepspeed, ctx, seeded_from_config=tiny):
        torch.manual_seed(config.seed)
        task = objective.build_task(config, ctx)
        try:
            return train(task, build_engine(task, config, ctx), config.trainer, ctx)
        finally:
            task.close()


def train_loop_per_worker(loop_config: dict) -> None:
    """Ray Train entry point: rebuild the typed config from plain data (`loop_config["config"]`) and run the loop
    of `loop_config["objective"]` (pickled by reference to its module, which the worker imports). It lives here, not
    in the launcher, so a worker imports only what its objective needs."""
    from rag_pet.training.ray_context import RayTrainContext

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_train_loop(to_config(loop_config["config"]), RayTrainContext(), loop_config["objective"])
