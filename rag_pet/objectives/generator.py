"""What the objectives that train a generator to answer questions share: their checks before training, how a
finished run's generator is loaded, and how it is evaluated (`GeneratorObjective`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rag_pet.config import ARTICLE_SOURCES, RagPetConfig
from rag_pet.objectives.base import Objective

if TYPE_CHECKING:
    from rag_pet.models import Generator


class GeneratorObjective(Objective):
    """An objective whose run trains (or leaves frozen) a generator that answers the eval questions.

    Subclasses implement `answer_split` (one split's answers, scored and written) and the training hooks."""

    def trains(self, config: RagPetConfig) -> bool:
        return config.peft.method != "frozen"

    def preflight(self, config: RagPetConfig) -> None:
        check_generator_training(config)

    def generator_dir(self, config: RagPetConfig, model_dir: Path) -> Path | None:
        return model_dir if config.peft.method != "frozen" else None

    def answer_split(
        self, config: RagPetConfig, generator: Generator, examples: list, out_dir: Path, model_dir: Path | None
    ) -> dict:
        """EM/F1 (and what else this objective measures) of `generator` answering `examples`, written to
        `out_dir`; `model_dir` holds the run's other trained weights (a retriever's towers)."""
        raise NotImplementedError

    def load_generator(
        self, config: RagPetConfig, model_dir: Path, base: Callable[[], Generator] | None = None
    ) -> Generator:
        """The generator a finished run trained (`model_dir`): an adapter on the base model (`base()`, built if not
        given), a full model, or the base model itself when the run left it frozen."""
        from rag_pet.models import Generator, attach_adapter, build_generator

        base = base or (lambda: build_generator(config.model))
        folder = self.generator_dir(config, model_dir)
        if folder is None:
            return base()
        if config.peft.method == "full":
            return build_generator(config.model, weights=folder)
        generator = base()
        return Generator(attach_adapter(generator.model, folder), generator.tokenizer, generator.is_seq2seq)

    def evaluate(
        self, config: RagPetConfig, label: str, model_dir: Path | None, base: Callable[[], Generator]
    ) -> dict[str, float]:
        """The answers on every split asked for, the general-text loss, and (`eval.latency_via=endpoint`) the answer
        latency through a Serve endpoint."""
        from rag_pet.evaluation.steps import eval_examples, evaluate_splits

        generator = base() if model_dir is None else self.load_generator(config, model_dir, base)
        metrics = evaluate_splits(config, self.answer_split, generator, label, model_dir)
        if config.eval.latency_via == "endpoint" and config.eval.latency_questions:
            from rag_pet.inference.spec import spec_for_model_dir
            from rag_pet.serving.endpoint_latency import endpoint_latency

            generator_dir = self.generator_dir(config, model_dir) if model_dir is not None else None
            spec = spec_for_model_dir(config, model_dir, generator_dir)
            metrics.update(endpoint_latency(spec, config.eval, eval_examples(config), self.answer_k(config)))
        return metrics

    def forgetting_baseline(self, config: RagPetConfig, base: Callable[[], Generator]) -> float | None:
        from rag_pet.evaluation.steps import general_text_loss

        return general_text_loss(config, base()) if config.eval.forgetting_texts else None

    def evaluation_metrics(self, config: RagPetConfig) -> tuple[str, ...]:
        from rag_pet.evaluation.steps import answer_metrics

        return answer_metrics(config, reads_passages=self.answer_k(config) is not None)


def check_generator_training(config: RagPetConfig) -> None:
    """Fail before any worker starts on bad training data, missing or unconvertible weights, or a PEFT method that
    does not fit the model."""
    from rag_pet.models import adapt_model
    from rag_pet.models.generator import build_skeleton, weights_dir
    from rag_pet.training.batching import load_training_examples, load_training_texts

    trainer = config.trainer
    if config.data.train_on == "questions":
        load_training_examples(config.data, trainer.batch_size, trainer.num_workers)
    else:
        load_training_texts(config.data, config.corpus, trainer.batch_size, trainer.num_workers)
    weights_dir(config.model)  # convert/cache pretrained weights once here, not in every worker
    skeleton, is_seq2seq = build_skeleton(config.model)
    adapt_model(skeleton, config.peft, is_seq2seq, trainer.max_steps)


def refuse_init_from(config: RagPetConfig) -> None:
    """`trainer.init_from` continues closed-book training only."""
    from rag_pet.errors import ConfigError

    if config.trainer.init_from:
        raise ConfigError(
            "trainer.init_from",
            config.trainer.init_from,
            "null unless closed-book training (objective=closed_book) of a PET method or full fine-tuning",
        )


def refuse_text_training(config: RagPetConfig) -> None:
    """Training on texts (`data.train_on=passages|corpus`) is closed-book language modelling only."""
    from rag_pet.errors import ConfigError

    if config.data.train_on != "questions":
        raise ConfigError(
            "data.train_on", config.data.train_on, "questions unless closed-book training (objective=closed_book)"
        )


def refuse_other_articles(config: RagPetConfig) -> None:
    """Questions about one article dataset are answered from its own corpus, never from another's articles."""
    from rag_pet.errors import ConfigError

    data, corpus = config.data.name, config.corpus.name
    if data in ARTICLE_SOURCES and corpus in ARTICLE_SOURCES and corpus != data:
        raise ConfigError(
            "corpus.name", corpus, f"{data} (corpus={data}), the articles data.name={data} asks about (or scifact/beir)"
        )


def estimate_sample(config: RagPetConfig, sample: int = 200) -> int:
    """Training examples a FLOPs estimate reads: the first `sample`, or all of a smaller training set."""
    return min(sample, config.data.max_train_examples or sample)
