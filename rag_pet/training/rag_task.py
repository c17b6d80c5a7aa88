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

from rag_pet.config import RagPetConfig
from rag_pet.data.prompts import passage_prompt_text
from rag_pet.data.types import Passage, QAExample
from rag_pet.errors import RagPetConfigError
from rag_pet.models import Generator, adapt_model, build_generator, build_tokenizer
from rag_pet.models.encoder import build_encoder
from rag_pet.models.generator import build_skeleton
from rag_pet.models.rag import RagModel, adapt_retriever
from rag_pet.models.rag_inputs import EMPTY_PASSAGE, RagInputs, rag_prompt_encoder
from rag_pet.retrieval.build import index_name
from rag_pet.retrieval.corpus import corpus_sha256, load_corpus
from rag_pet.retrieval.live_index import LiveIndex, encode_queries_for_search, index_root
from rag_pet.retrieval.store import newest_matching_version
from rag_pet.training.checkpoint import TrainState
from rag_pet.training.context import TrainContext
from rag_pet.training.loop import distributed_loader, endless_batches, load_training_examples

logger = logging.getLogger(__name__)


def build_rag_model(config: RagPetConfig) -> tuple[RagModel, Generator]:
    """The adapted generator and bi-encoder as one `RagModel`, and the generator (for its tokenizer)."""
    generator = build_generator(config.model)
    adapted = adapt_model(generator.model, config.peft, generator.is_seq2seq, config.trainer.max_steps)
    retriever = adapt_retriever(build_encoder(config.retriever), config.rag)
    return RagModel(adapted, retriever, generator.is_seq2seq, config.rag), generator


def generator_context_length(model_config: PretrainedConfig) -> int | None:
    """Positions the generator was built for (None when its config names no limit)."""
    return getattr(model_config, "max_position_embeddings", None) or getattr(model_config, "n_positions", None)


def check_rag_setup(config: RagPetConfig, passages: list[Passage]) -> None:
    """Refuse, before anything is built, a RAG setup that cannot work: K beyond the corpus, or prompts that cannot
    fit the generator's context (passages too long with truncation off, or `passage_max_tokens` too large)."""
    rag = config.rag
    if rag.k > len(passages):
        raise RagPetConfigError(
            "rag.k", rag.k, f"at most {len(passages)}, the passages in index.corpus={config.index.corpus}"
        )
    skeleton, is_seq2seq = build_skeleton(config.model)
    context = generator_context_length(skeleton.config)
    if context is None:
        return
    tokenizer = build_tokenizer(config.model)
    overhead = rag_prompt_encoder(config, tokenizer, is_seq2seq).rag_overhead_tokens()
    if rag.truncate_passages:
        if rag.passage_max_tokens + overhead > context:
            raise RagPetConfigError(
                "rag.passage_max_tokens",
                rag.passage_max_tokens,
                f"at most {context - overhead} (the generator's"
                f" context is {context} tokens, {overhead} of which the question, instruction and answer may take)",
            )
        return
    lengths = [len(ids) for ids in tokenizer([" " + passage_prompt_text(p) for p in passages]).input_ids]
    longest = max(range(len(passages)), key=lengths.__getitem__)
    if lengths[longest] + overhead > context:
        raise RagPetConfigError(
            "rag.truncate_passages",
            False,
            f"true, with rag.passage_max_tokens <= {context - overhead}: passage"
            f" {passages[longest].id!r} has {lengths[longest]} tokens and the generator's context is {context}",
        )


class RagTask:
    """`RagModel` (generator + bi-encoder) and batches retrieved from the live index."""

    def __init__(self, config: RagPetConfig, ctx: TrainContext):
        self.config, self.device = config, ctx.device
        self.model, generator = build_rag_model(config)
        retriever = self.model.retriever
        self.inputs = RagInputs(
            rag_prompt_encoder(config, generator.tokenizer, generator.is_seq2seq),
            retriever,
            generator.tokenizer.pad_token_id,
        )
        passages = load_corpus(config.index)
        self.passages = {p.id: p for p in passages}
        root, name = index_root(config.index), index_name(config.index)
        version = newest_matching_version(root, name, corpus_sha256(passages), retriever.doc_weights_hash())
        if version is None:
            raise RagPetConfigError(
                "index.storage_path",
                config.index.storage_path,
                f"a folder holding a {name} index built with this"
                " retriever (`python -m jobs.train` builds it before training; or run `python -m jobs.index`)",
            )
        self.index = LiveIndex(config, version, ctx.rank, ctx.broadcast)
        examples = load_training_examples(config, ctx.world_size)
        self.loader, self.sampler = distributed_loader(examples, config, ctx, collate=list)

    def retrieve(self, examples: list[QAExample]) -> dict[str, torch.Tensor]:
        """Search the index with the current query tower and build the batch of (question, passage) rows."""
        queries = {name: t.to(self.device) for name, t in self.inputs.queries(examples).items()}
        result = self.index.search(encode_queries_for_search(self.model.retriever, queries), self.config.rag.k)
        passages = [[self.passages.get(doc, EMPTY_PASSAGE) for doc in row] for row in result.doc_ids]
        return self.inputs.batch(
            examples, passages, result.vectors, result.rows >= 0, doc_tokens=self.config.rag.doc_encoder == "trainable"
        )

    def micro_batches(self, start: int) -> Iterator[dict[str, torch.Tensor]]:
        for examples in endless_batches(self.loader, self.sampler, start):
            yield {name: tensor.to(self.device) for name, tensor in self.retrieve(examples).items()}

    def restore(self, state: TrainState) -> None:
        if state.index_version is not None and state.index_version != self.index.version:
            self.index = LiveIndex(self.config, state.index_version, self.index.rank, self.index.broadcast)

    def after_step(self, step: int) -> dict[str, float]:
        every = self.config.rag.reindex_every
        if every:
            if step % every == 0 and step < self.config.trainer.max_steps:
                self.index.start_reindex(self.model.retriever, step)
            self.index.sync()
        return {"index_version": self.index.version, "failed_queries": self.index.failed_queries}

    def close(self) -> None:
        self.index.close()
