"""The index a RAG training run searches: found or built for the retriever, and re-built while training goes on.

When the document tower trains, rank 0 snapshots it every `rag.reindex_every` steps and a Ray task re-encodes the
corpus with it (Ray Data) into a new index version, while the workers keep training against the current one. Each
step, rank 0 says which version is current (one broadcast integer), so every worker swaps on the same step; the
shard actors of the version before the previous one are then stopped. A shard that dies is restarted and its
search retried by Ray itself (`index.max_restarts`, `max_task_retries=-1` on the shard actors).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import ray
import torch

from rag_pet.config import CorpusConfig, IndexSource
from rag_pet.models.encoder import BiEncoder
from rag_pet.models.rag import build_trained_encoder, save_trained_towers
from rag_pet.retrieval.build import build_index_version
from rag_pet.retrieval.corpus import corpus_sha256, load_corpus
from rag_pet.retrieval.sharded import SearchResult, ShardedIndex
from rag_pet.retrieval.store import newest_matching_version

logger = logging.getLogger(__name__)
SNAPSHOTS = "encoder_snapshots"


def ensure_index(source: IndexSource, trained_dir: Path | None = None, base_corpus: CorpusConfig | None = None) -> int:
    """The newest index version built from this corpus with this document encoder; built now if there is none
    (encoding only the passages `base_corpus` lacks, when this corpus grew from it)."""
    encoder = build_trained_encoder(source.retriever, trained_dir)
    corpus_hash = corpus_sha256(load_corpus(source.corpus))
    version = newest_matching_version(source.root, source.name, corpus_hash, encoder.doc_weights_hash())
    if version is not None:
        return version
    logger.info("no %s index for this document encoder yet: building one", source.name)
    _, manifest = build_index_version(source, trained_dir, base_corpus)
    return manifest.version


def open_index(source: IndexSource, version: int, detached: bool = False) -> ShardedIndex:
    """Attach to (starting if needed) the shard actors of one version of the configured index."""
    index = source.index
    return ShardedIndex(
        source.root,
        source.name,
        version,
        nprobe=index.nprobe,
        ef_search=index.ef_search,
        use_gpu=index.use_gpu,
        shard_cpus=index.shard_cpus,
        max_restarts=index.max_restarts,
        detached=detached,
    )


@ray.remote(num_cpus=0)
def _build_from_snapshot(source: IndexSource, snapshot: str) -> int:
    """Ray task: index the corpus with the document tower saved in `snapshot`; the new version number."""
    logging.basicConfig(level=logging.INFO)
    try:
        _, manifest = build_index_version(source, Path(snapshot))
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)
    return manifest.version


class LiveIndex:
    """A `ShardedIndex` that follows the newest version this run built, the same on every worker."""

    def __init__(
        self,
        source: IndexSource,
        version: int,
        rank: int,
        broadcast: Callable[[int], int],
        wait_for_builds: bool = False,
    ):
        """Attach to `version`; `broadcast` sends rank 0's integer to every worker (the train context's);
        `wait_for_builds` makes rank 0 wait for a running re-index at each `sync` (reproducible runs)."""
        self.source, self.rank, self.broadcast, self.wait_for_builds = source, rank, broadcast, wait_for_builds
        self.open: dict[int, ShardedIndex] = {}
        self.version = version
        self.pending: ray.ObjectRef | None = None
        self._attach(version)

    def _attach(self, version: int) -> ShardedIndex:
        self.open[version] = open_index(self.source, version)
        return self.open[version]

    def __len__(self) -> int:
        return len(self.open[self.version])

    def search(self, queries: np.ndarray, k: int) -> SearchResult:
        """Top-k from the current version."""
        return self.open[self.version].search(queries, k)

    def start_reindex(self, retriever: BiEncoder, step: int) -> None:
        """On rank 0, unless one is running: snapshot the document tower and index the corpus with it in a task."""
        if self.rank != 0 or self.pending is not None:
            return
        snapshot = self.source.root / self.source.name / SNAPSHOTS / f"step_{step:08d}"
        shutil.rmtree(snapshot, ignore_errors=True)
        save_trained_towers(retriever, snapshot, only="doc")
        self.pending = _build_from_snapshot.remote(self.source, str(snapshot))
        logger.info("re-indexing %s with the document tower of step %d", self.source.name, step)

    def sync(self) -> int:
        """Collective: every worker moves to the version rank 0 has finished building (if any); the current one.

        With `wait_for_builds`, rank 0 first waits for a running build."""
        ready = self.version
        wait = None if self.wait_for_builds else 0
        if self.rank == 0 and self.pending is not None and ray.wait([self.pending], timeout=wait)[0]:
            ready, self.pending = ray.get(self.pending), None
        ready = self.broadcast(ready)
        if ready != self.version:
            self._attach(ready)
            logger.info("index %s: now searching v%d (was v%d)", self.source.name, ready, self.version)
            previous, self.version = self.version, ready
            for old in [v for v in self.open if v not in (previous, ready)]:  # nobody searches those any more
                self.open.pop(old).close()  # stopped by the worker that started them; left to others' users
        return self.version

    def close(self) -> None:
        """Stop an unfinished re-index and the shard actors this worker started (not those a service or another
        run started, which may still be searching them)."""
        if self.pending is not None:
            ray.cancel(self.pending, force=True)
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
