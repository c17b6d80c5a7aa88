"""Closed-book generator training (any PET method or full fine-tuning): question in, answer out."""

from __future__ import annotations

from functools import partial

from rag_pet.config import RagPetConfig
from rag_pet.data.prompts import PromptEncoder, collate_training
from rag_pet.models import adapt_model, build_generator
from rag_pet.training.context import TrainContext
from rag_pet.training.loop import LoaderTask, distributed_loader, load_training_examples


class ClosedBookTask(LoaderTask):
    """The adapted generator and prompt-masked (question, answer) batches."""

    def __init__(self, config: RagPetConfig, ctx: TrainContext):
        generator = build_generator(config.model)
        self.model = adapt_model(generator.model, config.peft, generator.is_seq2seq, config.trainer.max_steps)
        encoder = PromptEncoder.from_config(generator.tokenizer, config.data, generator.is_seq2seq)
        features = [encoder.training_features(e) for e in load_training_examples(config, ctx.world_size)]
        collate = partial(collate_training, pad_token_id=generator.tokenizer.pad_token_id)
        self.loader, self.sampler = distributed_loader(features, config, ctx, collate)
        self.device = ctx.device
