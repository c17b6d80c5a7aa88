"""RAG (Lewis et al. 2020): the generator reads the top `rag.k` passages a dense retriever finds in the sharded index
and is trained through the RAG-Sequence or RAG-Token marginal over them: frozen throughout (`rag`), its adapter
trained over a frozen retriever (hybrid `rag+<PET method>`), or jointly with the query tower (`joint_rag`), the
document tower optionally re-indexed while training."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from rag_pet.config import RagPetConfig
from rag_pet.errors import ConfigError
from rag_pet.objectives.base import Method
from rag_pet.objectives.closed_book import PET_METHODS, learning_rate_override
from rag_pet.objectives.generator import (
    GeneratorObjective,
    check_generator_training,
    estimate_sample,
    refuse_init_from,
    refuse_other_articles,
    refuse_text_training,
)

if TYPE_CHECKING:
    from rag_pet.models import Generator


class Rag(GeneratorObjective):
    name = "rag"
    order = 1
    retrieves = True

    def check(self, config: RagPetConfig) -> None:
        refuse_init_from(config)
        refuse_text_training(config)
        refuse_other_articles(config)
        rag = config.rag
        if rag.reader == "concatenated" and self.trains(config):
            raise ConfigError(
                "rag.reader",
                "concatenated",
                "marginal when RAG trains (its loss marginalises over passages read one at a time); objective=raft"
                " trains a generator on passages read together",
            )
        if config.index.metric != "ip" and rag.retriever_trains:
            raise ConfigError("index.metric", config.index.metric, "ip when RAG trains the retriever")
        if config.retriever.shared and rag.query_encoder != "frozen" and rag.doc_encoder == "frozen":
            raise ConfigError(
                "retriever.shared",
                True,
                "false to train the query tower against a frozen document tower (or rag.doc_encoder=trainable"
                " with rag.reindex_every > 0 to train the one shared tower)",
            )
        if rag.doc_encoder == "trainable" and config.deepspeed.enabled and config.deepspeed.zero_stage == 3:
            raise ConfigError(
                "deepspeed.zero_stage",
                3,
                "0, 1 or 2 with rag.doc_encoder=trainable (re-indexing reads the whole document tower on rank 0)",
            )

    def trains(self, config: RagPetConfig) -> bool:
        return config.peft.method != "frozen" or config.rag.retriever_trains

    def label(self, config: RagPetConfig, trained: bool) -> str:
        """`rag`, `rag+lora`, `rag+lora+query_full`, `rag+query_lora+doc_reindexed`, ..."""
        if not trained:
            return "rag"
        parts = ["rag"] + ([config.peft.method] if config.peft.method != "frozen" else [])
        if config.rag.query_encoder != "frozen":
            parts.append(f"query_{config.rag.query_encoder}")
        if config.rag.doc_encoder == "trainable":
            parts.append("doc_reindexed")
        return "+".join(parts)

    def study_methods(self) -> list[Method]:
        return [
            Method("rag", ("experiment=rag_frozen",), trains=False, retrieves=True),
            *(
                Method(
                    f"rag+{pet}",
                    ("experiment=hybrid_rag_lora", f"peft={pet}", learning_rate_override(pet)),
                    trains=True,
                    retrieves=True,
                )
                for pet in PET_METHODS
            ),
            Method("joint_rag", ("experiment=joint_rag", learning_rate_override("lora")), trains=True, retrieves=True),
        ]

    def preflight(self, config: RagPetConfig) -> None:
        from rag_pet.retrieval.corpus import load_corpus
        from rag_pet.retrieval.live_index import ensure_index
        from rag_pet.runtime import ensure_ray
        from rag_pet.training.rag_task import check_rag_setup

        check_generator_training(config)
        check_rag_setup(config.model, config.data, config.rag, load_corpus(config.corpus))
        ensure_ray()
        ensure_index(config.index_source)

    def reserved_cpus(self, config: RagPetConfig) -> float:
        """The index shards, and the re-indexing encoder when the document tower trains."""
        encoder = config.index.encode_cpus if config.rag.doc_encoder == "trainable" else 0.0
        return config.index.num_shards * config.index.shard_cpus + encoder

    def build_task(self, config, ctx):
        from rag_pet.training.rag_task import RagTask

        return RagTask(
            config.model, config.peft, config.data, config.trainer, config.rag, config.index_source, config.seed, ctx
        )

    def build_model(self, config):
        from rag_pet.training.rag_task import build_rag_model

        return build_rag_model(config.model, config.peft, config.retriever, config.rag, config.trainer.max_steps)[0]

    def example_tokens(self, config: RagPetConfig, is_seq2seq: bool) -> float:
        """`rag.k` rows of prompt and answer, the question's gold passage standing in for what will be retrieved."""
        from rag_pet.data import load_qa_split
        from rag_pet.models.generator import build_tokenizer
        from rag_pet.models.rag_inputs import rag_prompt_encoder
        from rag_pet.retrieval.corpus import load_corpus

        passages = {p.id: p for p in load_corpus(config.corpus)}
        prompts = rag_prompt_encoder(config.data, config.rag, build_tokenizer(config.model), is_seq2seq)
        fallback = config.rag.passage_max_tokens + prompts.rag_overhead_tokens()

        def row_tokens(example) -> int:
            passage = passages.get(example.gold_passage_id or "")
            if passage is None:
                return fallback
            return len(prompts.prompt_ids(example, passage)) + len(prompts.answer_ids(example.answers[0]))

        examples = load_qa_split(config.data, config.data.train_split, estimate_sample(config))
        return config.rag.k * statistics.fmean(row_tokens(e) for e in examples)

    def generator_dir(self, config: RagPetConfig, model_dir: Path) -> Path | None:
        from rag_pet.models.rag import GENERATOR_DIR

        return model_dir / GENERATOR_DIR if config.peft.method != "frozen" else None

    def answer_k(self, config: RagPetConfig) -> int | None:
        return config.rag.k

    def answer_split(
        self, config: RagPetConfig, generator: Generator, examples: list, out_dir: Path, model_dir: Path | None
    ) -> dict:
        from rag_pet.devices import resolve_device
        from rag_pet.evaluation.rag_pipeline import evaluate_rag_pipeline

        return evaluate_rag_pipeline(
            generator,
            model_dir,
            examples,
            resolve_device(config.trainer.use_gpu),
            out_dir,
            source=config.index_source,
            data=config.data,
            rag=config.rag,
            settings=config.eval,
        )


OBJECTIVE = Rag()
