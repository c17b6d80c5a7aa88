"""Closed-book generator training (any PET method or full fine-tuning): question in, answer out."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from torch import nn

from rag_pet.config import CorpusConfig, DataConfig, ModelConfig, PeftConfig, TrainerConfig
from rag_pet.data.prompts import PromptEncoder, collate_loss_positions, collate_training
from rag_pet.errors import ConfigError
from rag_pet.models import Generator, adapt_model, build_generator
from rag_pet.models.adaptation import continue_adapter, prepends_virtual_tokens
from rag_pet.training.batching import (
    distributed_loader,
    load_training_examples,
    load_training_texts,
    mixed_questions,
)
from rag_pet.training.context import TrainContext
from rag_pet.training.task import LoaderTask


def build_adapted_generator(
    model: ModelConfig, peft: PeftConfig, max_steps: int, init_from: str | None = None
) -> tuple[nn.Module, Generator]:
    """The generator wrapped for `peft.method` (the module that trains), and the generator with its tokenizer;
    from the weights in `init_from` (an earlier run's adapter or fully fine-tuned model) when given."""
    if init_from and peft.method == "full":
        directory = Path(init_from).expanduser()
        if not (directory / "config.json").is_file():
            raise ConfigError(
                "trainer.init_from", init_from, "the model directory of a full fine-tuning run (it has config.json)"
            )
        generator = build_generator(model, weights=directory)
        return adapt_model(generator.model, peft, generator.is_seq2seq, max_steps), generator
    generator = build_generator(model)
    if init_from:
        adapted = continue_adapter(generator.model, Path(init_from).expanduser(), peft, generator.is_seq2seq)
        return adapted, generator
    return adapt_model(generator.model, peft, generator.is_seq2seq, max_steps), generator


def training_features(
    encoder: PromptEncoder, data: DataConfig, corpus: CorpusConfig, batch_size: int, world_size: int
) -> list[dict]:
    """Prompt-masked (question, answer) features, or (`data.train_on=passages|corpus`) `training_texts` as
    language-modelling text with any `mixed_questions` among them (one shuffled pool, trained in batches of like
    length: `ClosedBookTask`)."""
    if data.train_on != "questions":
        passages = load_training_texts(data, corpus, batch_size, world_size)
        texts = [encoder.text_features(p.text, data.max_text_tokens) for p in passages]
        return texts + [encoder.training_features(e) for e in mixed_questions(data, passages)]
    examples = load_training_examples(data, batch_size, world_size)
    return [encoder.training_features(e) for e in examples]


def grouping_lengths(data: DataConfig, rows: list[dict]) -> list[int] | None:
    """The rows' lengths, to batch them by length, where questions are mixed among texts; else None. A fact
    question is about 20 tokens and a text up to `data.max_text_tokens` (128 in the studies): a batch that held both
    would pad every question to the text and run the model over the padding, over half of a reading step."""
    if data.train_on == "questions" or data.mixed_questions == "none":
        return None
    return [len(row["input_ids"]) for row in rows]


class ClosedBookTask(LoaderTask):
    """The adapted generator and prompt-masked (question, answer) batches.

    Decoder-only batches run the vocabulary head on answer positions only (`collate_loss_positions`), except under
    prompt-learning methods: peft prepends virtual tokens there, which moves every position."""

    def __init__(
        self,
        model: ModelConfig,
        peft: PeftConfig,
        data: DataConfig,
        corpus: CorpusConfig,
        trainer: TrainerConfig,
        seed: int,
        ctx: TrainContext,
        features: Callable[[Generator], list[dict]] | None = None,
    ):
        """`features`: the training features, made with the generator's tokenizer (default: `training_features`,
        the questions closed-book or the texts, `corpus` for `data.train_on=corpus`); prompt-masked like
        `PromptEncoder.training_features`."""
        adapted, generator = build_adapted_generator(model, peft, trainer.max_steps, trainer.init_from)
        if features is None:
            encoder = PromptEncoder.from_config(generator.tokenizer, data, generator.is_seq2seq)
            rows = training_features(encoder, data, corpus, trainer.batch_size, ctx.world_size)
        else:
            rows = features(generator)
        head_at_loss_only = (
            not generator.is_seq2seq and not prepends_virtual_tokens(adapted) and data.train_on == "questions"
        )
        collate = partial(
            collate_loss_positions if head_at_loss_only else collate_training,
            pad_token_id=generator.tokenizer.pad_token_id,
        )
        loader, sampler = distributed_loader(
            rows, trainer.batch_size, seed, ctx.rank, ctx.world_size, collate, lengths=grouping_lengths(data, rows)
        )
        super().__init__(adapted, loader, sampler, ctx.device)
