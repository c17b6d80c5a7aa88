"""The training loop of one worker: the task `config.objective` declares (rag_pet/objectives), its engine, and the
loop run on them.

The one training module that reads the whole `RagPetConfig`; the tasks, engines and loop below it take sections.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import torch
from torch import nn

from rag_pet.config import RagPetConfig, to_config
from rag_pet.devices import resolve_precision
from rag_pet.objectives import objective_of
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


def build_objective_model(config: RagPetConfig) -> nn.Module:
    """The module `config.objective` trains, freshly built (trained parameters initialised, frozen ones loaded)."""
    return objective_of(config).build_model(config)


def run_train_loop(config: RagPetConfig, ctx: TrainContext) -> dict:
    """Train `config.objective` for `trainer.max_steps` optimizer steps, resuming from the latest checkpoint; runs
    standalone with a `LocalContext` or inside a Ray Train worker."""
    trainer = replace(config.trainer, precision=resolve_precision(config.trainer.precision, ctx.device))
    config = replace(config, trainer=trainer)
    tiny = config.model.source == "tiny"
    with partitioned_construction(config.trainer, config.deepspeed, ctx, seeded_from_config=tiny):
        torch.manual_seed(config.seed)
        task = objective_of(config).build_task(config, ctx)
        try:
            return train(task, build_engine(task, config, ctx), config.trainer, ctx)
        finally:
            task.close()


def train_loop_per_worker(config: dict) -> None:
    """Ray Train entry point: rebuild the typed config from plain data and run the loop. It lives here, not in the
    launcher, so a worker imports only what its objective needs."""
    from rag_pet.training.ray_context import RayTrainContext

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_train_loop(to_config(config), RayTrainContext())
