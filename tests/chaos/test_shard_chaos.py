"""Chaos, bounded: a random index shard actor killed every 5 s for 60 s under a stream of queries.

Every query must be answered, and answered exactly as an unsharded exact search would (ids and scores); the shard
actors restart and Ray retries their searches. Run with `python -m pytest -m slow tests/chaos -s` to see the figures.
"""

import random
import threading
import time

import faiss
import numpy as np
import pytest
import ray

from rag_pet.retrieval.sharded import ShardedIndex
from tests.retrieval.test_sharded import random_unit_vectors, write_flat

KILL_EVERY_S = 5.0
DURATION_S = 60.0


@pytest.mark.slow
def test_queries_are_answered_exactly_while_shards_are_killed(ray_local, tmp_path):
    vectors = random_unit_vectors(20000, 64, seed=11)
    _, manifest = write_flat(tmp_path, "chaos", vectors, num_shards=4)
    index = ShardedIndex(tmp_path, manifest.name, shard_cpus=0.1)
    queries = random_unit_vectors(512, 64, seed=12)
    exact = faiss.IndexFlatIP(64)
    exact.add(vectors)
    expected_scores, expected_rows = exact.search(queries, 10)

    stop, kills = threading.Event(), []

    def killer() -> None:
        chooser = random.Random(0)
        while not stop.wait(KILL_EVERY_S):
            number = chooser.randrange(len(index.shards))
            ray.kill(index.shards[number], no_restart=False)
            kills.append((round(time.monotonic() - start, 1), number))

    start = time.monotonic()
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    answered, wrong, batch = 0, 0, 0
    try:
        while time.monotonic() - start < DURATION_S:
            rows = slice(batch * 16 % 512, batch * 16 % 512 + 16)
            result = index.search(queries[rows], 10)
            answered += 16
            wrong += int((result.rows != expected_rows[rows]).any(axis=1).sum())
            np.testing.assert_allclose(result.scores, expected_scores[rows], rtol=1e-5, atol=1e-6)
            batch += 1
    finally:
        stop.set()
        thread.join()
        index.close()
    print(f"\nshard chaos: {len(kills)} shard kills in {DURATION_S:.0f} s, {answered} queries answered, {wrong} wrong")
    assert len(kills) >= DURATION_S // KILL_EVERY_S - 1
    assert wrong == 0 and answered > 0
