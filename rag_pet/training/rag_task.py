"""RAG training: each micro-batch retrieves its passages with the current query tower, then trains on them.

One objective covers the training modes of the paper tables, chosen by config: a frozen retriever with the
generator fine-tuned (full or PET, i.e. hybrid RAG + PET), joint training (query tower full or LoRA), and a
document tower that trains with the index re-built every `rag.reindex_every` steps.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
from transformers import PretrainedConfig

from rag_pet.config import DataConfig, IndexSource, ModelConfig, PeftConfig, RagConfig, RetrieverConfig, TrainerConfig
from rag_pet.data.prompts import passage_prompt_text
from rag_pet.data.types import Passage, QAExample
from rag_pet.errors import ConfigError
from rag_pet.models import Generator, build_tokenizer
from rag_pet.models.encoder import build_encoder
from rag_pet.models.generator import build_skeleton
from rag_pet.models.rag import RagModel, adapt_retriever
from rag_pet.models.rag_inputs import EMPTY_PASSAGE, RagInputs, rag_prompt_encoder
from rag_pet.retrieval.corpus import corpus_sha256, load_corpus
from rag_pet.retrieval.live_index import LiveIndex, encode_queries_for_search
from rag_pet.retrieval.store import newest_matching_version
from rag_pet.training.batching import distributed_loader, endless_batches, load_training_examples
from rag_pet.training.checkpoint import TrainState
from rag_pet.training.closed_book import build_adapted_generator
from rag_pet.training.context import TrainContext
from rag_pet.training.task import trainable_parameters

logger = logging.getLogger(__name__)


def build_rag_model(
    model: ModelConfig, peft: PeftConfig, retriever: RetrieverConfig, rag: RagConfig, max_steps: int
) -> tuple[RagModel, Generator]:
    """The adapted generator and bi-encoder as one `RagModel`, and the generator (for its tokenizer)."""
    adapted, generator = build_adapted_generator(model, peft, max_steps)
    towers = adapt_retriever(build_encoder(retriever), rag)
    return RagModel(adapted, towers, generator.is_seq2seq, rag.marginal, rag.temperature), generator


def generator_context_length(model_config: PretrainedConfig) -> int | None:
    """Positions the generator was built for (None when its config names no limit)."""
    return getattr(model_config, "max_position_embeddings", None) or getattr(model_config, "n_positions", None)


def check_rag_setup(model: ModelConfig, data: DataConfig, rag: RagConfig, passages: list[Passage]) -> None:
    """Refuse, before anything is built, a RAG setup that cannot work: K beyond the corpus, or prompts that cannot
    fit the generator's context (passages too long with truncation off, or `passage_max_tokens` too large)."""
    if rag.k > len(passages):
        raise ConfigError("rag.k", rag.k, f"at most {len(passages)}, the passages in the corpus")
    skeleton, is_seq2seq = build_skeleton(model)
    context = generator_context_length(skeleton.config)
    if context is None:
        return
    tokenizer = build_tokenizer(model)
    overhead = rag_prompt_encoder(data, rag, tokenizer, is_seq2seq).rag_overhead_tokens()
    if rag.truncate_passages:
        if rag.passage_max_tokens + overhead > context:
            raise ConfigError(
                "rag.passage_max_tokens",
                rag.passage_max_tokens,
                f"at most {context - overhead} (the generator's"
                f" context is {context} tokens, {overhead} of which the question, instruction and answer may take)",
            )
        return
    lengths = [len(ids) for ids in tokenizer([" " + passage_prompt_text(p) for p in passages]).input_ids]
    longest = max(range(len(passages)), key=lengths.__getitem__)
    if lengths[longest] + overhead > context:
        raise ConfigError(
            "rag.truncate_passages",
            False,
            f"true, with rag.passage_max_tokens <= {context - overhead}: passage"
            f" {passages[longest].id!r} has {lengths[longest]} tokens and the generator's context is {context}",
        )


class RagTask:
    """`RagModel` (generator + bi-encoder) and batches retrieved from the live index."""

    def __init__(
        self,
        model: ModelConfig,
        peft: PeftConfig,
        data: DataConfig,
        trainer: TrainerConfig,
        rag: RagConfig,
        source: IndexSource,
        seed: int,
        ctx: TrainContext,
    ):
        self.rag, self.max_steps, self.device = rag, trainer.max_steps, ctx.device
        self.model, generator = build_rag_model(model, peft, source.retriever, rag, trainer.max_steps)
        retriever = self.model.retriever
        prompts = rag_prompt_encoder(data, rag, generator.tokenizer, generator.is_seq2seq)
        self.inputs = RagInputs(prompts, retriever, generator.tokenizer.pad_token_id)
        passages = load_corpus(source.corpus)
        self.passages = {p.id: p for p in passages}
        version = newest_matching_version(
            source.root, source.name, corpus_sha256(passages), retriever.doc_weights_hash()
        )
        if version is None:
            raise ConfigError(
                "index.storage_path",
                source.index.storage_path,
                f"a folder holding a {source.name} index built with this"
                " retriever (`python -m jobs.train` builds it before training; or run `python -m jobs.index`)",
            )
        self.index = LiveIndex(source, version, ctx.rank, ctx.broadcast, wait_for_builds=not rag.reindex_async)
        examples = load_training_examples(data, trainer.batch_size, ctx.world_size)
        self.loader, self.sampler = distributed_loader(
            examples, trainer.batch_size, seed, ctx.rank, ctx.world_size, collate=list
        )

    def parameter_groups(self) -> list[dict]:
        """One group, or with `rag.retriever_lr` the retriever towers in a group of their own at that rate (the
        schedule scales both)."""
        if self.rag.retriever_lr is None:
            return trainable_parameters(self.model)
        groups = [
            {"params": [p for p in self.model.generator.parameters() if p.requires_grad]},
            {"params": [p for p in self.model.retriever.parameters() if p.requires_grad], "lr": self.rag.retriever_lr},
        ]
        return [group for group in groups if group["params"]]

    def retrieve(self, examples: list[QAExample]) -> dict[str, torch.Tensor]:
        """Search the index with the current query tower and build the batch of (question, passage) rows."""
        queries = {name: t.to(self.device) for name, t in self.inputs.queries(examples).items()}
        result = self.index.search(encode_queries_for_search(self.model.retriever, queries), self.rag.k)
        passages = [[self.passages.get(doc, EMPTY_PASSAGE) for doc in row] for row in result.doc_ids]
        return self.inputs.batch(
            examples, passages, result.vectors, result.rows >= 0, doc_tokens=self.rag.doc_encoder == "trainable"
        )

    def micro_batches(self, start: int) -> Iterator[dict[str, torch.Tensor]]:
        for examples in endless_batches(self.loader, self.sampler, start):
            yield {name: tensor.to(self.device) for name, tensor in self.retrieve(examples).items()}

    def restore(self, state: TrainState) -> None:
        version = state.task_fields.get("index_version")
        if version is not None and version != self.index.version:
            index = self.index
            self.index = LiveIndex(index.source, version, index.rank, index.broadcast, index.wait_for_builds)

    def after_step(self, step: int) -> dict[str, float]:
        every = self.rag.reindex_every
        if every:
            if step % every == 0 and step < self.max_steps:
                self.index.start_reindex(self.model.retriever, step)
            self.index.sync()
        return {"index_version": self.index.version}

    def close(self) -> None:
        self.index.close()
