"""`ShardedIndex`: one FAISS shard per Ray actor; queries fan out and the top-k merge is exact.

Each actor holds 1/N of the vectors (its index and a memory-mapped copy of its raw vectors, returned with the
results so a query encoder stays trainable against them). Actors are named, so training workers and Serve
replicas attach to the same shards, and restart on failure, reloading their shard from storage.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
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

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local top-k as (scores, global rows, vectors); missing results have row -1 and zero vectors."""
        scores, local = self.index.search(queries, min(k, self.index.ntotal))
        vectors = np.where((local >= 0)[..., None], self.vectors[np.maximum(local, 0)], 0.0).astype(np.float32)
        return scores, np.where(local >= 0, local + self.offset, -1), vectors

    def stats(self) -> dict:
        """Vector count and this process's peak resident memory, for health checks and benchmarks."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"num_vectors": int(self.index.ntotal), "pid": os.getpid(), "max_rss_bytes": usage.ru_maxrss * 1024}


def merge_top_k(results: list[tuple[np.ndarray, np.ndarray, np.ndarray]], k: int, keep_max: bool):
    """Exact top-k over shard results with faiss's `ResultHeap`, and the vectors of the winners."""
    heap = faiss.ResultHeap(len(results[0][0]), k, keep_max=keep_max)
    for scores, rows, _ in results:
        heap.add_result(scores, rows)
    heap.finalize()
    all_rows = np.concatenate([rows for _, rows, _ in results], axis=1)
    all_vectors = np.concatenate([vectors for _, _, vectors in results], axis=1)
    position = (all_rows[:, None, :] == heap.I[:, :, None]).argmax(-1)
    vectors = np.take_along_axis(all_vectors, position[..., None], axis=1)
    return heap.D, heap.I, vectors


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
        directory, self.manifest = read_manifest(Path(root), name, version)
        self.doc_ids: list[str] = json.loads((directory / IDS).read_text())
        self.keep_max = higher_is_better(self.manifest.metric)
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

    def _checked(self, queries: np.ndarray, k: int) -> np.ndarray:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise SearchError(
                f"search error: queries are {queries.shape[1]}-d but index {self.manifest.name} "
                f"holds {self.dim}-d vectors"
            )
        if not 0 < k <= len(self):
            raise SearchError(
                f"search error: k={k} is invalid; allowed: 1 to {len(self)} (the number of indexed vectors)"
            )
        return queries

    def _merged(self, results: list, k: int) -> SearchResult:
        scores, rows, vectors = merge_top_k(results, k, self.keep_max)
        doc_ids = [[self.doc_ids[row] if row >= 0 else "" for row in query_rows] for query_rows in rows]
        return SearchResult(scores, rows, doc_ids, vectors)

    def search(self, queries: np.ndarray, k: int) -> SearchResult:
        """Top-k for a batch of query vectors, merged exactly across shards."""
        queries = self._checked(queries, k)
        return self._merged(ray.get([shard.search.remote(queries, k) for shard in self.shards]), k)

    async def search_async(self, queries: np.ndarray, k: int) -> SearchResult:
        """`search` for an event loop (a Serve replica): awaits the shards instead of blocking on them."""
        queries = self._checked(queries, k)
        return self._merged(await asyncio.gather(*[shard.search.remote(queries, k) for shard in self.shards]), k)

    def health(self) -> list[dict]:
        """Per-shard stats; raises if a shard cannot answer."""
        return ray.get([shard.stats.remote() for shard in self.shards])

    def close(self) -> None:
        """Stop the shard actors (they are otherwise shared until the driver that made them exits)."""
        for shard in self.shards:
            ray.kill(shard, no_restart=True)
