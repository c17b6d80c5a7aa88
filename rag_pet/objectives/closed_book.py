"""Closed-book: the generator answers from its weights alone, trained by full fine-tuning or any PET method
(question in, answer out), or left as it is (zero-shot)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from rag_pet.config import PEFT_METHODS_TRAINABLE, RagPetConfig
from rag_pet.errors import ConfigError
from rag_pet.objectives.base import Method
from rag_pet.objectives.generator import GeneratorObjective, estimate_sample

if TYPE_CHECKING:
    from rag_pet.models import Generator

PET_METHODS = tuple(method for method in PEFT_METHODS_TRAINABLE if method != "full")


class ClosedBook(GeneratorObjective):
    name = "closed_book"
    order = 0

    def check(self, config: RagPetConfig) -> None:
        if config.trainer.init_from and config.peft.method == "frozen":
            raise ConfigError(
                "trainer.init_from",
                config.trainer.init_from,
                "null unless closed-book training (objective=closed_book) of a PET method or full fine-tuning",
            )

    def label(self, config: RagPetConfig, trained: bool) -> str:
        return config.peft.method if trained else "zero-shot"

    def study_methods(self) -> list[Method]:
        return [
            Method("zero_shot", ("experiment=zero_shot",), trains=False, retrieves=False),
            Method("full", ("experiment=closed_book_full",), trains=True, retrieves=False),
            *(
                Method(pet, ("experiment=closed_book_lora", f"peft={pet}"), trains=True, retrieves=False)
                for pet in PET_METHODS
            ),
        ]

    def build_task(self, config, ctx):
        from rag_pet.training.closed_book import ClosedBookTask

        return ClosedBookTask(config.model, config.peft, config.data, config.trainer, config.seed, ctx)

    def build_model(self, config):
        from rag_pet.training.closed_book import build_adapted_generator

        trainer = config.trainer
        return build_adapted_generator(config.model, config.peft, trainer.max_steps, trainer.init_from)[0]

    def example_tokens(self, config: RagPetConfig, is_seq2seq: bool) -> float:
        """A question's prompt and answer, or (`data.train_on=passages`) a paragraph's first
        `data.max_text_tokens`, as `training_features` reads them."""
        from rag_pet.data import load_qa_split
        from rag_pet.data.datasets import load_split_passages
        from rag_pet.data.prompts import PromptEncoder
        from rag_pet.models.generator import build_tokenizer

        data = config.data
        prompts = PromptEncoder.from_config(build_tokenizer(config.model), data, is_seq2seq)
        limit = estimate_sample(config)
        if data.train_on == "passages":
            texts = load_split_passages(data, data.train_split, limit)
            return statistics.fmean(
                len(prompts.text_features(p.text, data.max_text_tokens)["input_ids"]) for p in texts
            )
        examples = load_qa_split(data, data.train_split, limit)
        return statistics.fmean(len(prompts.training_features(e)["input_ids"]) for e in examples)

    def answer_split(
        self, config: RagPetConfig, generator: Generator, examples: list, out_dir: Path, model_dir: Path | None
    ) -> dict:
        from rag_pet.devices import resolve_device
        from rag_pet.evaluation import evaluate_qa

        device = resolve_device(config.trainer.use_gpu)
        return evaluate_qa(generator, config.data, config.eval, examples, device, out_dir)


OBJECTIVE = ClosedBook()
