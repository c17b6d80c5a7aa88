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
# Peak AdamW learning rate each trainable method's study cells train at (a ~135M decoder, a few hundred steps at
# most); `study.overrides` / `study.method_overrides` set another, since they come after a method's own overrides.
LEARNING_RATES = {
    "full": 3e-5,  # BERT-base fine-tuning grid {2,3,5}e-5 (Devlin et al. 2019)
    "lora": 5e-4,  # RoBERTa-base (125M) at 4e-4..5e-4 (Hu et al. 2021, Table 9)
    "dora": 3e-4,  # NVlabs/DoRA commonsense runs: 1e-4..2e-4 where LoRA trains at 3e-4 (Liu et al. 2024)
    "adalora": 1e-3,  # peft examples/conditional_generation/peft_adalora_seq2seq.py (BART-base, AdamW)
    "loha": 5e-4,  # peft's LoRA-methods guide trains LoRA, LoHa, LoKr and AdaLoRA at one rate
    "lokr": 5e-4,  # as loha
    "ia3": 3e-3,  # T-Few (Liu et al. 2022); peft's IA3 guide uses 8e-3 with AdamW
    "prefix": 1e-2,  # peft's seq2seq prefix-tuning guide (AdamW, no reparametrisation, as built here)
    "prompt": 3e-2,  # peft's prompt-based methods guide (bloomz-560m, AdamW); Lester et al. 2021: 0.3 with Adafactor
    "ptuning": 1e-3,  # peft's p-tuning guide (roberta-large, AdamW; the prompt encoder reparametrises)
}


def learning_rate_override(method: str) -> str:
    """The override that trains PET method (or `full`) `method` at its rate in `LEARNING_RATES`."""
    return f"trainer.lr={LEARNING_RATES[method]:g}"


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
        trained = {"full": ("experiment=closed_book_full",)}
        trained |= {pet: ("experiment=closed_book_lora", f"peft={pet}") for pet in PET_METHODS}
        return [
            Method("zero_shot", ("experiment=zero_shot",), trains=False, retrieves=False),
            *(
                Method(name, (*overrides, learning_rate_override(name)), trains=True, retrieves=False)
                for name, overrides in trained.items()
            ),
        ]

    def build_task(self, config, ctx):
        from rag_pet.training.closed_book import ClosedBookTask

        return ClosedBookTask(config.model, config.peft, config.data, config.corpus, config.trainer, config.seed, ctx)

    def build_model(self, config):
        from rag_pet.training.closed_book import build_adapted_generator

        trainer = config.trainer
        return build_adapted_generator(config.model, config.peft, trainer.max_steps, trainer.init_from)[0]

    def example_tokens(self, config: RagPetConfig, is_seq2seq: bool) -> float:
        """A question's prompt and answer, or (`data.train_on=passages|corpus`) a text's first
        `data.max_text_tokens` (weighed with the mixed-in questions' prompts and answers), as `training_features`
        reads them."""
        from rag_pet.data import load_qa_split
        from rag_pet.data.prompts import PromptEncoder
        from rag_pet.models.generator import build_tokenizer
        from rag_pet.training.batching import mixed_questions, training_texts

        data = config.data
        prompts = PromptEncoder.from_config(build_tokenizer(config.model), data, is_seq2seq)
        limit = estimate_sample(config)
        if data.train_on != "questions":
            texts = training_texts(data, config.corpus)
            text_mean = statistics.fmean(
                len(prompts.text_features(p.text, data.max_text_tokens)["input_ids"]) for p in texts[:limit]
            )
            questions = mixed_questions(data, texts)
            if not questions:
                return text_mean
            question_mean = statistics.fmean(len(prompts.training_features(e)["input_ids"]) for e in questions[:limit])
            share = len(questions) / (len(texts) + len(questions))  # of the pool batches draw from
            return (1 - share) * text_mean + share * question_mean
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
