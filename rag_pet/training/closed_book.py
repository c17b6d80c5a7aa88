"""Closed-book generator training (any PET method or full fine-tuning): question in, answer out."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import torch

from rag_pet.config import RagPetConfig
from rag_pet.data.prompts import PromptEncoder, collate_training
from rag_pet.models import adapt_model, build_generator
from rag_pet.training.checkpoint import TrainState
from rag_pet.training.context import TrainContext
from rag_pet.training.loop import distributed_loader, endless_batches, load_training_examples


class ClosedBookTask:
    """The adapted generator and prompt-masked (question, answer) batches."""

    def __init__(self, config: RagPetConfig, ctx: TrainContext):
        generator = build_generator(config.model)
        self.model = adapt_model(generator.model, config.peft, generator.is_seq2seq, config.trainer.max_steps)
        encoder = PromptEncoder.from_config(generator.tokenizer, config.data, generator.is_seq2seq)
        features = [encoder.training_features(e) for e in load_training_examples(config, ctx.world_size)]
        collate = partial(collate_training, pad_token_id=generator.tokenizer.pad_token_id)
        self.loader, self.sampler = distributed_loader(features, config, ctx, collate)
        self.device = ctx.device

    def micro_batches(self, start: int) -> Iterator[dict[str, torch.Tensor]]:
        for batch in endless_batches(self.loader, self.sampler, start):
            yield {name: tensor.to(self.device) for name, tensor in batch.items()}

    def restore(self, state: TrainState) -> None:
        return None

    def after_step(self, step: int) -> dict[str, float]:
        return {}

    def close(self) -> None:
        return None
