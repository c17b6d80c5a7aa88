"""Objective dispatch: the task, engine and model that `config.objective` trains, and the loop run on them.

The one training module that reads the whole `RagPetConfig`; the tasks, engines and loop below it take sections.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import torch
from torch import nn

from rag_pet.config import RagPetConfig, to_config
from rag_pet.devices import resolve_precision
from rag_pet.training.closed_book import ClosedBookTask, build_adapted_generator
from rag_pet.training.context import TrainContext
from rag_pet.training.deepspeed_engine import DeepSpeedEngine, partitioned_construction
from rag_pet.training.engine import TorchEngine, TrainEngine
from rag_pet.training.loop import train
from rag_pet.training.task import TrainTask

# The RAG and retriever task modules are imported when their objective runs: they bring Ray, FAISS and bm25s, and
# closed-book training must import without them (GPU checks run it standalone where none is installed).


def build_task(config: RagPetConfig, ctx: TrainContext) -> TrainTask:
    """The task `config.objective` names."""
    if config.objective == "rag":
        from rag_pet.training.rag_task import RagTask

        return RagTask(
            config.model, config.peft, config.data, config.trainer, config.rag, config.index_source, config.seed, ctx
        )
    if config.objective == "retriever":
        from rag_pet.training.retriever_task import RetrieverTask

        rag = config.rag
        return RetrieverTask(
            config.retriever,
            config.corpus,
            config.data,
            config.trainer,
            rag.temperature,
            rag.hard_negatives,
            config.seed,
            ctx,
        )
    return ClosedBookTask(config.model, config.peft, config.data, config.trainer, config.seed, ctx)


def build_engine(task: TrainTask, config: RagPetConfig, ctx: TrainContext) -> TrainEngine:
    """DeepSpeed when `deepspeed.enabled`, else plain PyTorch (DDP under Ray Train with several workers)."""
    if config.deepspeed.enabled:
        return DeepSpeedEngine(task.model, task.parameter_groups(), config.trainer, config.deepspeed, ctx)
    return TorchEngine(task.model, task.parameter_groups(), config.trainer, ctx)


def build_objective_model(config: RagPetConfig) -> nn.Module:
    """The module `config.objective` trains, freshly built (trained parameters initialised, frozen ones loaded)."""
    if config.objective == "rag":
        from rag_pet.training.rag_task import build_rag_model

        return build_rag_model(config.model, config.peft, config.retriever, config.rag, config.trainer.max_steps)[0]
    if config.objective == "retriever":
        from rag_pet.training.retriever_task import build_dual_encoder

        return build_dual_encoder(config.retriever, config.rag.temperature)
    return build_adapted_generator(config.model, config.peft, config.trainer.max_steps, config.trainer.init_from)[0]


def run_train_loop(config: RagPetConfig, ctx: TrainContext) -> dict:
    """Train `config.objective` for `trainer.max_steps` optimizer steps, resuming from the latest checkpoint; runs
    standalone with a `LocalContext` or inside a Ray Train worker."""
    trainer = replace(config.trainer, precision=resolve_precision(config.trainer.precision, ctx.device))
    config = replace(config, trainer=trainer)
    tiny = config.model.source == "tiny"
    with partitioned_construction(config.trainer, config.deepspeed, ctx, seeded_from_config=tiny):
        torch.manual_seed(config.seed)
        task = build_task(config, ctx)
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
