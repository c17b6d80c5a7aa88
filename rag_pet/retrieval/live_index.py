"""The index a RAG training run searches: found or built for the retriever, and re-built while training goes on.

When the document tower trains, rank 0 snapshots it every `rag.reindex_every` steps and a Ray task re-encodes the
corpus with it (Ray Data) into a new index version, while the workers keep training against the current one. Each
step, rank 0 says which version is current (one broadcast integer), so every worker swaps on the same step; the
shard actors of the version before the previous one are then stopped. A search that meets a dead shard reattaches
and retries once, and is counted in `failed_queries` only if that fails too.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import ray
import torch

from rag_pet.config import IndexConfig, RagPetConfig, RetrieverConfig, to_config, to_dict
from rag_pet.models.encoder import BiEncoder
from rag_pet.models.rag import build_trained_encoder, save_trained_towers
from rag_pet.retrieval.build import build_index_version, index_name
from rag_pet.retrieval.corpus import corpus_sha256, load_corpus
from rag_pet.retrieval.sharded import SearchResult, ShardedIndex
from rag_pet.retrieval.store import newest_matching_version

logger = logging.getLogger(__name__)
SNAPSHOTS = "encoder_snapshots"


def index_root(index: IndexConfig) -> Path:
    """Absolute storage directory of the configured index family."""
    return Path(index.storage_path).expanduser().resolve()


def ensure_index(index: IndexConfig, retriever: RetrieverConfig, trained_dir: Path | None = None) -> int:
    """The newest index version built from this corpus with this document encoder; built now if there is none."""
    encoder = build_trained_encoder(retriever, trained_dir)
    corpus_hash = corpus_sha256(load_corpus(index))
    version = newest_matching_version(index_root(index), index_name(index), corpus_hash, encoder.doc_weights_hash())
    if version is not None:
        return version
    logger.info("no %s index for this document encoder yet: building one", index_name(index))
    _, manifest = build_index_version(index, retriever, trained_dir)
    return manifest.version


def open_index(index: IndexConfig, version: int, detached: bool = False) -> ShardedIndex:
    """Attach to (starting if needed) the shard actors of one version of the configured index."""
    return ShardedIndex(
        index_root(index),
        index_name(index),
        version,
        nprobe=index.nprobe,
        ef_search=index.ef_search,
        use_gpu=index.use_gpu,
        shard_cpus=index.shard_cpus,
        max_restarts=index.max_restarts,
        detached=detached,
    )


@ray.remote(num_cpus=0)
def _build_from_snapshot(config: dict, snapshot: str) -> int:
    """Ray task: index the corpus with the document tower saved in `snapshot`; the new version number."""
    logging.basicConfig(level=logging.INFO)
    typed = to_config(config)
    try:
        _, manifest = build_index_version(typed.index, typed.retriever, Path(snapshot))
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)
    return manifest.version


class LiveIndex:
    """A `ShardedIndex` that follows the newest version this run built, the same on every worker."""

    def __init__(self, config: RagPetConfig, version: int, rank: int, broadcast: Callable[[int], int]):
        """Attach to `version`; `broadcast` sends rank 0's integer to every worker (the train context's)."""
        self.config, self.rank, self.broadcast = config, rank, broadcast
        self.root, self.name = index_root(config.index), index_name(config.index)
        self.open: dict[int, ShardedIndex] = {}
        self.version = version
        self.failed_queries = 0
        self.pending: ray.ObjectRef | None = None
        self._attach(version)

    def _attach(self, version: int) -> ShardedIndex:
        self.open[version] = open_index(self.config.index, version)
        return self.open[version]

    def __len__(self) -> int:
        return len(self.open[self.version])

    def search(self, queries: np.ndarray, k: int) -> SearchResult:
        """Top-k from the current version; a lost shard is reattached (by name) and the search retried once."""
        try:
            return self.open[self.version].search(queries, k)
        except ray.exceptions.RayActorError:
            logger.warning("index %s v%d: a shard was lost; reattaching", self.name, self.version)
        try:
            return self._attach(self.version).search(queries, k)
        except ray.exceptions.RayActorError:
            self.failed_queries += 1
            raise

    def start_reindex(self, retriever: BiEncoder, step: int) -> None:
        """On rank 0, unless one is running: snapshot the document tower and index the corpus with it in a task."""
        if self.rank != 0 or self.pending is not None:
            return
        snapshot = self.root / self.name / SNAPSHOTS / f"step_{step:08d}"
        shutil.rmtree(snapshot, ignore_errors=True)
        save_trained_towers(retriever, snapshot, only="doc")
        self.pending = _build_from_snapshot.remote(to_dict(self.config), str(snapshot))
        logger.info("re-indexing %s with the document tower of step %d", self.name, step)

    def sync(self) -> int:
        """Collective: every worker moves to the version rank 0 has finished building (if any); the current one.

        With `rag.reindex_async=false`, rank 0 first waits for a running build."""
        ready = self.version
        wait = None if not self.config.rag.reindex_async else 0
        if self.rank == 0 and self.pending is not None and ray.wait([self.pending], timeout=wait)[0]:
            ready, self.pending = ray.get(self.pending), None
        ready = self.broadcast(ready)
        if ready != self.version:
            self._attach(ready)
            logger.info("index %s: now searching v%d (was v%d)", self.name, ready, self.version)
            previous, self.version = self.version, ready
            for old in [v for v in self.open if v not in (previous, ready)]:  # nobody searches those any more
                retired = self.open.pop(old)
                if self.rank == 0:
                    retired.close()
        return self.version

    def close(self) -> None:
        """Stop an unfinished re-index and, on rank 0, every shard actor this run opened."""
        if self.pending is not None:
            ray.cancel(self.pending, force=True)
        if self.rank == 0:
            for index in self.open.values():
                index.close()


@torch.no_grad()
def encode_queries_for_search(retriever: BiEncoder, batch: dict[str, torch.Tensor]) -> np.ndarray:
    """Query vectors for the index search, from the current query tower without dropout."""
    tower = retriever.query_tower
    was_training = tower.training
    tower.eval()
    try:
        vectors = retriever.embed(tower, batch["query_input_ids"], batch["query_attention_mask"])
    finally:
        tower.train(was_training)
    return vectors.float().cpu().numpy()
