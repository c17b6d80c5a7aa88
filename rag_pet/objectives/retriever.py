"""The retriever alone: the bi-encoder trained contrastively (in-batch and hard negatives) on a corpus's relevance
judgements, evaluated by dense retrieval metrics over its own index version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rag_pet.config import ARTICLE_SOURCES, RagPetConfig
from rag_pet.errors import ConfigError
from rag_pet.objectives.base import Objective
from rag_pet.objectives.generator import refuse_init_from, refuse_text_training


class Retriever(Objective):
    name = "retriever"
    order = 3

    def check(self, config: RagPetConfig) -> None:
        refuse_init_from(config)
        refuse_text_training(config)
        corpus = config.corpus.name
        if corpus in ARTICLE_SOURCES and config.data.name != corpus:
            raise ConfigError("corpus.name", corpus, "the corpus of data.name, or scifact/beir")

    def trains(self, config: RagPetConfig) -> bool:
        return True

    def label(self, config: RagPetConfig, trained: bool) -> str:
        return "retriever" if trained else "retriever (base)"

    def preflight(self, config: RagPetConfig) -> None:
        from rag_pet.training.retriever_task import relevance_pairs

        if not relevance_pairs(config.corpus, config.data):
            raise ConfigError("corpus.name", config.corpus.name, "a corpus with training relevance judgements")

    def build_task(self, config, ctx):
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

    def build_model(self, config):
        from rag_pet.training.retriever_task import build_dual_encoder

        return build_dual_encoder(config.retriever, config.rag.temperature)

    def evaluate(self, config: RagPetConfig, label: str, model_dir: Path | None, base: Callable) -> dict[str, float]:
        """Dense retrieval metrics of the configured (or trained) bi-encoder on its own index version."""
        from rag_pet.evaluation.retrieval_eval import evaluate_retrieval
        from rag_pet.evaluation.steps import eval_dir

        out_dir = eval_dir(config, label)
        [row] = evaluate_retrieval(
            config.index_source, config.data, config.eval, out_dir, trained_dir=model_dir, methods=["dense"]
        )
        return {key: value for key, value in row.items() if key != "method"}

    def evaluation_metrics(self, config: RagPetConfig) -> tuple[str, ...]:
        from rag_pet.evaluation.metric_names import RETRIEVER_METRICS

        return RETRIEVER_METRICS


OBJECTIVE = Retriever()
