"""Build the answering components of an `InferenceSpec`: the passage retriever and the generator with its adapters.

Serve replicas, the Ray Data batch runner and in-process evaluation build them here, so all three serve the same
weights with the same prompts.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rag_pet.inference.answering import Answerer, PassageRetriever
from rag_pet.inference.spec import InferenceSpec
from rag_pet.models.generator import build_generator
from rag_pet.models.multi_adapter import AdapterSwitch
from rag_pet.models.rag import build_trained_encoder
from rag_pet.models.rag_inputs import rag_prompt_encoder
from rag_pet.retrieval.corpus import load_corpus
from rag_pet.retrieval.live_index import open_index


def build_passage_retriever(spec: InferenceSpec, index_version: int, detached: bool = False) -> PassageRetriever:
    """The (trained) query tower over the shard actors of `index_version`; `detached` shards outlive this process."""
    source = spec.config.index_source
    encoder = build_trained_encoder(source.retriever, spec.retriever_dir)
    index = open_index(source, index_version, detached=detached)
    return PassageRetriever(encoder, index, {p.id: p for p in load_corpus(source.corpus)})


class AdaptedAnswerer:
    """An `Answerer` over the base generator, and the adapters of the spec loaded onto it on demand."""

    def __init__(self, spec: InferenceSpec, device: torch.device):
        config = spec.config
        generator = build_generator(config.model, weights=Path(spec.full_weights) if spec.full_weights else None)
        prompts = rag_prompt_encoder(config.data, config.rag, generator.tokenizer, generator.is_seq2seq)
        self.answerer = Answerer(generator, prompts, config.rag, device, config.eval.precision)
        self.switch = AdapterSwitch(generator.model)
        self.spec = spec

    def load(self, adapter: str) -> str:
        """Load a served adapter onto the base model; its slot name."""
        return self.switch.load(self.spec.adapters[adapter], adapter)

    def answer(self, slot: str | None, questions: list[str], passages=None, max_new_tokens: int = 16) -> list[str]:
        """`Answerer.answer` with the adapter in `slot` switched on (None: the base model)."""
        with self.switch.active(slot) as model:
            return self.answerer.answer(questions, passages, max_new_tokens, model=model)
