"""Closed-book generator training (any PET method or full fine-tuning): question in, answer out."""

from __future__ import annotations

from functools import partial

from torch import nn

from rag_pet.config import DataConfig, ModelConfig, PeftConfig, TrainerConfig
from rag_pet.data.prompts import PromptEncoder, collate_loss_positions, collate_training
from rag_pet.models import Generator, adapt_model, build_generator
from rag_pet.models.adaptation import prepends_virtual_tokens
from rag_pet.training.batching import distributed_loader, load_training_examples
from rag_pet.training.context import TrainContext
from rag_pet.training.task import LoaderTask


def build_adapted_generator(model: ModelConfig, peft: PeftConfig, max_steps: int) -> tuple[nn.Module, Generator]:
    """The generator wrapped for `peft.method` (the module that trains), and the generator with its tokenizer."""
    generator = build_generator(model)
    return adapt_model(generator.model, peft, generator.is_seq2seq, max_steps), generator


class ClosedBookTask(LoaderTask):
    """The adapted generator and prompt-masked (question, answer) batches.

    Decoder-only batches run the vocabulary head on answer positions only (`collate_loss_positions`), except under
    prompt-learning methods: peft prepends virtual tokens there, which moves every position."""

    def __init__(
        self,
        model: ModelConfig,
        peft: PeftConfig,
        data: DataConfig,
        trainer: TrainerConfig,
        seed: int,
        ctx: TrainContext,
    ):
        adapted, generator = build_adapted_generator(model, peft, trainer.max_steps)
        encoder = PromptEncoder.from_config(generator.tokenizer, data, generator.is_seq2seq)
        examples = load_training_examples(data, trainer.batch_size, ctx.world_size)
        features = [encoder.training_features(e) for e in examples]
        head_at_loss_only = not generator.is_seq2seq and not prepends_virtual_tokens(adapted)
        collate = partial(
            collate_loss_positions if head_at_loss_only else collate_training,
            pad_token_id=generator.tokenizer.pad_token_id,
        )
        loader, sampler = distributed_loader(features, trainer.batch_size, seed, ctx.rank, ctx.world_size, collate)
        super().__init__(adapted, loader, sampler, ctx.device)
