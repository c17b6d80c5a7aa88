"""Ray Serve deployments of the retriever and of the generator with multiplexed adapters, both batched.

Model work runs inline in the batch handler, on the event loop Serve gives user code (its own thread, so health
checks and metrics go on). Requests that arrive meanwhile wait and form the next batch. Moving generation to a
worker thread is worse: HF generation holds the GIL most of the time, so the loop barely admits requests and
batches stay at one or two (measured: 11 vs 39 requests/s at 32 concurrent, benchmarks/serve_latency.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ray import serve

from rag_pet.devices import resolve_device
from rag_pet.inference.answering import RetrievedPassage
from rag_pet.inference.components import AdaptedAnswerer, build_passage_retriever
from rag_pet.inference.spec import BASE_ADAPTER, InferenceSpec
from rag_pet.models.multi_adapter import LoadedAdapter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnswerItem:
    """One question for the generator, with the passages to read (None or empty: closed-book)."""

    question: str
    passages: list[RetrievedPassage] | None
    max_new_tokens: int


@serve.deployment(name="Retriever")
class RetrieverDeployment:
    """Query tower + a handle to the `ShardedIndex` shard actors of one index version; batched retrieval."""

    def __init__(self, args: dict):
        spec = InferenceSpec.from_args(args)
        self.retriever = build_passage_retriever(spec, spec.index_version, detached=True)
        settings = spec.config.serve.retriever
        self.retrieve.set_max_batch_size(settings.max_batch_size)
        self.retrieve.set_batch_wait_timeout_s(settings.batch_wait_timeout_s)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)  # set from serve.* in __init__
    async def retrieve(self, requests: list[tuple[str, int]]) -> list[list[RetrievedPassage]]:
        """Top-k passages per (question, k); one encoder pass and one index search for the whole batch."""
        depth = max(k for _, k in requests)
        found = await self.retriever.retrieve_async([question for question, _ in requests], depth)
        return [hits[:k] for hits, (_, k) in zip(found, requests, strict=True)]

    def info(self) -> dict:
        """Name, version and size of the served index."""
        manifest = self.retriever.index.manifest
        return {"name": manifest.name, "version": manifest.version, "num_vectors": manifest.num_vectors}

    def check_health(self) -> None:
        """Serve's periodic health check: every shard actor answers."""
        self.retriever.index.health()


def generator_deployment(max_adapters_per_replica: int):
    """The generator deployment class, keeping at most `max_adapters_per_replica` adapters per replica (LRU)."""

    @serve.deployment(name="Generator")
    class GeneratorDeployment:
        """One base model; the adapter of each request is chosen by its multiplexed model id (empty: the base)."""

        def __init__(self, args: dict):
            spec = InferenceSpec.from_args(args)
            settings = spec.config.serve.generator
            self.model = AdaptedAnswerer(spec, resolve_device(settings.num_gpus > 0))
            self.answer.set_max_batch_size(settings.max_batch_size)
            self.answer.set_batch_wait_timeout_s(settings.batch_wait_timeout_s)

        @serve.multiplexed(max_num_models_per_replica=max_adapters_per_replica)
        async def get_adapter(self, adapter: str):
            slot = self.model.load(adapter)
            logger.info("loaded adapter %s as %s", adapter, slot)
            return LoadedAdapter(self.model.switch, slot)

        @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)  # set from serve.* in __init__
        async def answer(self, items: list[AnswerItem]) -> list[str]:
            """Answers for a batch of one adapter (Serve splits batches by multiplexed model id)."""
            adapter = serve.get_multiplexed_model_id()
            loaded = await self.get_adapter(adapter) if adapter and adapter != BASE_ADAPTER else None
            slot = loaded.slot if loaded is not None else None
            answers = [""] * len(items)
            for tokens in sorted({item.max_new_tokens for item in items}):
                group = [i for i, item in enumerate(items) if item.max_new_tokens == tokens]
                questions = [items[i].question for i in group]
                passages = [items[i].passages or [] for i in group]  # no passages: closed-book
                found = self.model.answer(slot, questions, passages, tokens)
                for i, text in zip(group, found, strict=True):
                    answers[i] = text
            return answers

        def check_health(self) -> None:
            """Serve's periodic health check: the model is in memory."""
            next(self.model.answerer.generator.model.parameters())

    return GeneratorDeployment
