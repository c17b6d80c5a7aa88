"""Index building by factory string: every family trains, fills, and finds what it should."""

import faiss
import numpy as np
import pytest

from rag_pet.errors import ConfigError
from rag_pet.retrieval.faiss_index import build_index, configure_search, shard_bounds, to_gpu_if_asked


def clustered(count: int = 3000, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, dim))
    vectors = centres[rng.integers(0, 30, count)] + 0.3 * rng.standard_normal((count, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(
    ("factory", "min_recall"),
    [("Flat", 1.0), ("IVF32,Flat", 0.9), ("HNSW16", 0.9), ("IVF32,PQ8x4", 0.15), ("PQ16x4", 0.15)],
)
@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_factories_build_and_search(factory, min_recall, metric):
    # recall@10 against exact search; chance is 10 / 3000; PQ codes (4 bits) are lossy by design.
    vectors = clustered()
    index = build_index(vectors, factory, metric, train_sample=2000)
    configure_search(index, nprobe=16, ef_search=64)
    assert index.ntotal == len(vectors) and index.is_trained
    exact = build_index(vectors, "Flat", metric, train_sample=1)
    queries = vectors[:50] + 0.01
    _, truth = exact.search(queries, 10)
    _, found = index.search(queries, 10)
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
    assert recall >= min_recall, recall


def test_search_parameters_reach_the_index():
    ivf = build_index(clustered(), "IVF32,Flat", "ip", train_sample=2000)
    configure_search(ivf, nprobe=7, ef_search=64)
    assert faiss.extract_index_ivf(ivf).nprobe == 7
    hnsw = build_index(clustered(), "HNSW16", "ip", train_sample=2000)
    configure_search(hnsw, nprobe=7, ef_search=99)
    assert hnsw.hnsw.efSearch == 99


def test_bad_factories_and_gpu_requests_are_config_errors():
    with pytest.raises(ConfigError, match="could not parse index string Nonsense"):
        build_index(clustered(100), "Nonsense", "ip", train_sample=100)
    if faiss.get_num_gpus() == 0:
        with pytest.raises(ConfigError, match="index.use_gpu"):
            to_gpu_if_asked(build_index(clustered(100), "Flat", "ip", train_sample=1), use_gpu=True)


def test_shard_bounds_cover_every_row_once():
    assert shard_bounds(10, 4) == [(0, 2), (2, 5), (5, 8), (8, 10)]
    assert shard_bounds(100_001, 3)[-1][1] == 100_001
