"""`ShardedIndex`: one FAISS shard per Ray actor; queries fan out and the top-k merge is exact.

Each actor holds 1/N of the vectors (its index and a memory-mapped copy of its raw vectors, returned with the
results so a query encoder stays trainable against them). Actors are named, so training workers and Serve
replicas attach to the same shards, and restart on failure, reloading their shard from storage.
"""

from __future__ import annotations

import asyncio
import json
import numbers
import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import ray

from rag_pet.errors import RagPetError
from rag_pet.retrieval.faiss_index import configure_search, higher_is_better, to_gpu_if_asked
from rag_pet.retrieval.store import IDS, read_manifest

NAMESPACE = "rag_pet"


class SearchError(RagPetError, ValueError):
    """A query the index cannot answer as asked (wrong dimension, k out of range)."""


@dataclass
class SearchResult:
    """Top-k per query, best first: scores, row ids, document ids and the documents' vectors.

    An approximate index (IVF with a small `nprobe`) may find fewer than k: those slots hold row -1, id "".
    """

    scores: np.ndarray  # (nq, k) float32
    rows: np.ndarray  # (nq, k) int64, global row ids
    doc_ids: list[list[str]]
    vectors: np.ndarray  # (nq, k, dim) float32


class IndexShard:
    """One shard: a FAISS index over rows [offset, offset + n) and those rows' vectors."""

    def __init__(self, shard_dir: str, offset: int, nprobe: int, ef_search: int, use_gpu: bool):
        index = faiss.read_index(str(Path(shard_dir) / "index.faiss"))
        configure_search(index, nprobe, ef_search)
        self.index = to_gpu_if_asked(index, use_gpu)
        self.vectors = np.load(Path(shard_dir) / "vectors.npy", mmap_mode="r")
        self.offset = offset

    def search(self, queries: np.ndarray, k: int, keep_max: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local top-k as (scores, global rows, vectors) in `ranking_order`; missing results have row -1 and zero
        vectors. Asks FAISS for more than k while the k-th score is tied beyond what it returned, so the
        winners at a tied k-th score are the lowest rows, whatever the shard boundaries."""
        want, total = min(k, self.index.ntotal), self.index.ntotal
        fetch = min(want + 1, total)
        while True:
            scores, local = self.index.search(queries, fetch)
            tied = (scores[:, fetch - 1] == scores[:, want - 1]) & (local[:, fetch - 1] >= 0)
            if fetch == total or not tied.any():
                break
            fetch = min(2 * fetch, total)
        rows = np.where(local >= 0, local + self.offset, -1)
        best = ranking_order(scores, rows, keep_max)[:, :want]
        scores, rows, local = (np.take_along_axis(a, best, axis=1) for a in (scores, rows, local))
        vectors = np.where((local >= 0)[..., None], self.vectors[np.maximum(local, 0)], 0.0).astype(np.float32)
        return scores, rows, vectors

    def stats(self) -> dict:
        """Vector count and this process's peak resident memory, for health checks and benchmarks."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"num_vectors": int(self.index.ntotal), "pid": os.getpid(), "max_rss_bytes": usage.ru_maxrss * 1024}


def ranking_order(scores: np.ndarray, rows: np.ndarray, keep_max: bool) -> np.ndarray:
    """Per query, positions sorted best score first, equal scores by row (the stable document key); missing
    results (row -1) last."""
    missing = rows < 0
    primary = -scores if keep_max else scores
    return np.lexsort((np.where(missing, np.iinfo(np.int64).max, rows), primary, missing), axis=-1)


def merge_top_k(results: list[tuple[np.ndarray, np.ndarray, np.ndarray]], k: int, keep_max: bool):
    """Exact top-k over shard results, ties broken by row, with the winners' vectors.

    Not faiss's `ResultHeap`: it breaks ties in heap order, so which documents win at a tied k-th score would depend
    on how the index is sharded; sorting by (score, row) makes every shard count return the same documents."""
    scores = np.concatenate([part for part, _, _ in results], axis=1)
    rows = np.concatenate([part for _, part, _ in results], axis=1)
    vectors = np.concatenate([part for _, _, part in results], axis=1)
    best = ranking_order(scores, rows, keep_max)[:, :k]
    picked = (np.take_along_axis(part, best, axis=1) for part in (scores, rows))
    return *picked, np.take_along_axis(vectors, best[..., None], axis=1)


def shard_actor_name(name: str, version: int, number: int) -> str:
    """The Ray actor name of one shard of an index version: every process attaches to the same actors by it."""
    return f"{name}/v{version}/shard-{number}"


def shards_running(name: str, version: int) -> bool:
    """Whether the shard actors of an index version are up (some process started them)."""
    try:
        ray.get_actor(shard_actor_name(name, version, 0), namespace=NAMESPACE)
    except ValueError:
        return False
    return True


class ShardedIndex:
    """Front end over the shard actors of one index version."""

    def __init__(
        self,
        root: str | Path,
        name: str,
        version: int | None = None,
        *,
        nprobe: int = 8,
        ef_search: int = 64,
        use_gpu: bool = False,
        shard_cpus: float = 0.25,
        max_restarts: int = -1,
        detached: bool = False,
    ):
        """Attach to (or start) the shard actors; `detached` ones outlive the process that starts them (a Serve
        replica), so a lost replica never takes the shards with it; `close` stops them."""
        self.root = Path(root)
        directory, self.manifest = read_manifest(self.root, name, version)
        self.doc_ids: list[str] = json.loads((directory / IDS).read_text())
        self.keep_max = higher_is_better(self.manifest.metric)
        self.started_shards = not shards_running(name, self.manifest.version)
        shard_actor = ray.remote(IndexShard)
        self.shards = [
            shard_actor.options(
                name=shard_actor_name(name, self.manifest.version, number),
                namespace=NAMESPACE,
                get_if_exists=True,
                num_cpus=shard_cpus,
                num_gpus=1 if use_gpu else 0,
                max_restarts=max_restarts,
                max_task_retries=-1,
                scheduling_strategy="SPREAD",
                lifetime="detached" if detached else None,
            ).remote(str(directory / f"shard_{number:03d}"), start, nprobe, ef_search, use_gpu)
            for number, (start, _) in enumerate(self.manifest.shard_bounds)
        ]

    @property
    def dim(self) -> int:
        return self.manifest.dim

    def __len__(self) -> int:
        return self.manifest.num_vectors

    def _checked(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, int]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise SearchError(
                f"search error: queries are {queries.shape[1]}-d but index {self.manifest.name} "
                f"holds {self.dim}-d vectors"
            )
        if not np.isfinite(queries).all():
            bad = sorted({int(row) for row in np.nonzero(~np.isfinite(queries))[0]})
            raise SearchError(f"search error: query rows {bad[:5]} hold NaN or infinity; allowed: finite vectors")
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 < k <= len(self):
            raise SearchError(
                f"search error: k={k!r} is invalid; allowed: an integer from 1 to {len(self)} (the indexed vectors)"
            )
        return queries, int(k)

    def _merged(self, results: list, k: int) -> SearchResult:
        scores, rows, vectors = merge_top_k(results, k, self.keep_max)
        doc_ids = [[self.doc_ids[row] if row >= 0 else "" for row in query_rows] for query_rows in rows]
        return SearchResult(scores, rows, doc_ids, vectors)

    @contextmanager
    def _lost_shards_explained(self) -> Iterator[None]:
        """When a shard actor cannot answer: the store's own error if its files changed under it (a restarted actor
        cannot reload a corrupt shard, which Ray reports only as a dead actor); else Ray's error."""
        try:
            yield
        except ray.exceptions.RayActorError:
            read_manifest(self.root, self.manifest.name, self.manifest.version)
            raise

    def search(self, queries: np.ndarray, k: int) -> SearchResult:
        """Top-k for a batch of query vectors, merged exactly across shards."""
        queries, k = self._checked(queries, k)
        with self._lost_shards_explained():
            results = ray.get([shard.search.remote(queries, k, self.keep_max) for shard in self.shards])
        return self._merged(results, k)

    async def search_async(self, queries: np.ndarray, k: int) -> SearchResult:
        """`search` for an event loop (a Serve replica): awaits the shards instead of blocking on them."""
        queries, k = self._checked(queries, k)
        with self._lost_shards_explained():
            results = await asyncio.gather(*[shard.search.remote(queries, k, self.keep_max) for shard in self.shards])
        return self._merged(results, k)

    def health(self) -> list[dict]:
        """Per-shard stats; raises if a shard cannot answer (the store's error if its files are corrupt)."""
        with self._lost_shards_explained():
            return ray.get([shard.stats.remote() for shard in self.shards])

    def close(self) -> None:
        """Stop the shard actors if this front end started them; shards it attached to stay up for the process
        that started them (a Serve replica, another run), which may still be searching them."""
        if self.started_shards:
            self.stop()

    def stop(self) -> None:
        """Stop the shard actors, whoever started them."""
        for shard in self.shards:
            ray.kill(shard, no_restart=True)
