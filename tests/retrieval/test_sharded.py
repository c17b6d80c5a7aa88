"""ShardedIndex over Ray actors against one in-process exact faiss search on the same vectors."""

import os
import time

import faiss
import numpy as np
import pytest
import ray

from rag_pet.retrieval.build import index_external_vectors
from rag_pet.retrieval.sharded import SearchError, ShardedIndex, shards_running
from rag_pet.retrieval.store import IndexStoreError


def random_unit_vectors(count: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def wait_until_exited(pid: int, deadline_s: float = 120.0) -> None:
    """Block until a local process has exited (a killed actor's old worker)."""
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still runs {deadline_s:.0f} s after ray.kill")


def write_flat(root, name, vectors, num_shards, metric="ip"):
    ids = [f"doc-{i}" for i in range(len(vectors))]
    return index_external_vectors(root, name, ids, vectors, metric=metric, num_shards=num_shards, train_sample=1000)


def assert_matches_exact(index: ShardedIndex, vectors: np.ndarray, queries: np.ndarray, k: int, metric="ip"):
    exact = faiss.IndexFlatIP(vectors.shape[1]) if metric == "ip" else faiss.IndexFlatL2(vectors.shape[1])
    exact.add(vectors)
    scores, rows = exact.search(queries, k)
    result = index.search(queries, k)
    np.testing.assert_array_equal(result.rows, rows)
    np.testing.assert_array_equal(result.scores, scores)
    np.testing.assert_array_equal(result.vectors, vectors[rows])
    assert result.doc_ids[0] == [f"doc-{row}" for row in rows[0]]


@pytest.mark.parametrize("num_shards", [1, 2, 4])
@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_sharded_search_equals_exact_search_on_random_vectors(ray_local, tmp_path, num_shards, metric):
    vectors = random_unit_vectors(3001, 48, seed=num_shards)
    _, manifest = write_flat(tmp_path, f"random{num_shards}{metric}", vectors, num_shards, metric)
    index = ShardedIndex(tmp_path, manifest.name, shard_cpus=0.1)
    assert len(index.health()) == num_shards
    assert sum(shard["num_vectors"] for shard in index.health()) == 3001
    queries = random_unit_vectors(64, 48, seed=100)
    for k in (1, 10, 100):
        assert_matches_exact(index, vectors, queries, k, metric)
    index.close()


def test_k_larger_than_a_shard_still_merges_exactly(ray_local, tmp_path):
    vectors = random_unit_vectors(10, 8, seed=1)
    _, manifest = write_flat(tmp_path, "small", vectors, num_shards=4)
    index = ShardedIndex(tmp_path, manifest.name, shard_cpus=0.1)
    assert_matches_exact(index, vectors, random_unit_vectors(3, 8, seed=2), k=10)
    index.close()


def test_bad_queries_get_clear_errors(ray_local, tmp_path):
    vectors = random_unit_vectors(20, 8, seed=1)
    _, manifest = write_flat(tmp_path, "errors", vectors, num_shards=2)
    index = ShardedIndex(tmp_path, manifest.name, shard_cpus=0.1)
    with pytest.raises(SearchError, match="queries are 9-d but index errors holds 8-d vectors"):
        index.search(np.zeros((1, 9), np.float32), 5)
    for k in (0, -1, 21, 2.0, "3", True):
        with pytest.raises(SearchError, match=rf"k={k!r} is invalid; allowed: an integer from 1 to 20"):
            index.search(np.ones((1, 8), np.float32), k)
    nan = np.ones((3, 8), np.float32)
    nan[1, 4] = np.nan
    with pytest.raises(SearchError, match=r"query rows \[1\] hold NaN or infinity"):
        index.search(nan, 5)
    assert index.search(np.ones((1, 8), np.float32), np.int64(5)).rows.shape == (1, 5)  # numpy integers are k too
    index.close()


def test_a_killed_shard_restarts_reloads_and_answers_the_same(ray_local, tmp_path):
    vectors = random_unit_vectors(2000, 32, seed=3)
    _, manifest = write_flat(tmp_path, "restart", vectors, num_shards=2)
    index = ShardedIndex(tmp_path, manifest.name, shard_cpus=0.1)
    queries = random_unit_vectors(16, 32, seed=4)
    before = index.search(queries, 10)
    pid_before = index.health()[0]["pid"]
    results = []
    for step in range(30):
        if step == 10:
            ray.kill(index.shards[0], no_restart=False)
        results.append(index.search(queries, 10))
    for result in results:
        np.testing.assert_array_equal(result.rows, before.rows)
        np.testing.assert_array_equal(result.scores, before.scores)
    after = index.health()[0]
    assert after["pid"] != pid_before  # a new process reloaded the shard from storage
    assert after["num_vectors"] == 1000
    index.close()


def test_a_second_front_end_attaches_to_the_same_named_shards(ray_local, tmp_path):
    _, manifest = write_flat(tmp_path, "shared", random_unit_vectors(40, 8, seed=5), num_shards=2)
    first = ShardedIndex(tmp_path, manifest.name, shard_cpus=0.1)
    second = ShardedIndex(tmp_path, manifest.name, shard_cpus=0.1)
    assert [s["pid"] for s in first.health()] == [s["pid"] for s in second.health()]
    second.close()  # it only attached: the shards stay up for the first front end
    assert first.search(random_unit_vectors(1, 8, seed=6), 3).rows.shape == (1, 3)
    first.close()
    assert not shards_running(manifest.name, manifest.version)


def test_ties_pick_the_same_documents_for_every_shard_count(ray_local, tmp_path):
    """Each vector four times, spread over the shards: at a tied k-th score the lowest rows win, as in a full sort."""
    unique = random_unit_vectors(30, 16, seed=7)
    vectors = np.ascontiguousarray(unique[np.random.default_rng(0).permutation(np.repeat(np.arange(30), 4))])
    queries = random_unit_vectors(90, 16, seed=8)
    exact = faiss.IndexFlatIP(16)
    exact.add(vectors)
    all_scores, all_rows = exact.search(queries, len(vectors))
    order = np.lexsort((all_rows, -all_scores), axis=-1)
    expected_rows = np.take_along_axis(all_rows, order, axis=1)
    expected_scores = np.take_along_axis(all_scores, order, axis=1)
    for num_shards in (1, 2, 3, 4):
        _, manifest = write_flat(tmp_path, f"ties{num_shards}", vectors, num_shards)
        index = ShardedIndex(tmp_path, manifest.name, shard_cpus=0.1)
        for k in (1, 3, 5, 6, 10):
            result = index.search(queries, k)
            np.testing.assert_array_equal(result.rows, expected_rows[:, :k], err_msg=f"{num_shards} shards, k={k}")
            np.testing.assert_array_equal(result.scores, expected_scores[:, :k])
        index.close()


def test_a_shard_corrupted_under_a_running_actor_is_reported_by_the_store_after_a_restart(ray_local, tmp_path):
    vectors = random_unit_vectors(200, 8, seed=9)
    directory, manifest = write_flat(tmp_path, "corrupt", vectors, num_shards=2)
    index = ShardedIndex(tmp_path, manifest.name, shard_cpus=0.1)
    queries = random_unit_vectors(2, 8, seed=10)
    index.search(queries, 3)
    old_pid = ray.get(index.shards[0].stats.remote())["pid"]
    shard_file = directory / "shard_000" / "index.faiss"
    shard_file.write_bytes(shard_file.read_bytes()[:100])  # truncated while the actor runs
    ray.kill(index.shards[0], no_restart=False)  # its restart reloads the damaged file
    wait_until_exited(old_pid)  # ray.kill returns before the process dies; a search could still reach it
    with pytest.raises(IndexStoreError, match=r"shard_000/index.faiss is missing or corrupt \(sha256 differs"):
        index.search(queries, 3)
    index.close()
