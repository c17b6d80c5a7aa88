"""ShardedIndex (2 Ray actors) vs in-process faiss on 100k x 384 vectors: queries/s at batch 1 and 64, memory.

python benchmarks/sharded_qps.py [--vectors 100000] [--shards 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import faiss
import numpy as np

from rag_pet.retrieval.build import index_external_vectors
from rag_pet.retrieval.sharded import ShardedIndex
from rag_pet.runtime import ensure_ray


def queries_per_second(search, queries: np.ndarray, batch: int, k: int, seconds: float = 10.0) -> float:
    """Run batches of `batch` queries for about `seconds`; return queries answered per second."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        offset = (done // batch * batch) % (len(queries) - batch)
        search(queries[offset : offset + batch], k)
        done += batch
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.vectors, args.dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.standard_normal((4096, args.dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    ensure_ray(include_dashboard=False, log_to_driver=False)
    root = tempfile.mkdtemp()
    ids = [str(i) for i in range(len(vectors))]
    index_external_vectors(root, "bench", ids, vectors, num_shards=args.shards, train_sample=1)
    sharded = ShardedIndex(root, "bench", shard_cpus=1.0 / args.shards)
    exact = faiss.IndexFlatIP(args.dim)
    exact.add(vectors)
    np.testing.assert_array_equal(sharded.search(queries[:64], args.k).rows, exact.search(queries[:64], args.k)[1])

    print(
        f"{args.vectors} x {args.dim} float32, Flat inner product, k={args.k}, {args.shards} shard actors, "
        f"faiss threads in-process: {faiss.omp_get_max_threads()}"
    )
    print("| batch | in-process faiss q/s | ShardedIndex q/s | ratio |")
    print("| --- | --- | --- | --- |")
    for batch in (1, 64):
        baseline = queries_per_second(lambda q, k: exact.search(q, k), queries, batch, args.k)
        candidate = queries_per_second(sharded.search, queries, batch, args.k)
        print(f"| {batch} | {baseline:.0f} | {candidate:.0f} | {candidate / baseline:.2f}x |")
    index_bytes = vectors.nbytes
    for number, stats in enumerate(sharded.health()):
        print(
            f"shard {number}: {stats['num_vectors']} vectors, peak RSS {stats['max_rss_bytes'] / 2**20:.0f} MiB "
            f"(index data {stats['num_vectors'] * args.dim * 4 / 2**20:.0f} MiB of {index_bytes / 2**20:.0f} MiB)"
        )
    sharded.close()


if __name__ == "__main__":
    main()
