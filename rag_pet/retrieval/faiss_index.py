"""FAISS indexes built from an `index_factory` string, trained on a sample, tuned by config, on CPU or GPU."""

from __future__ import annotations

import logging
import re

import faiss
import numpy as np

from rag_pet.errors import ConfigError

logger = logging.getLogger(__name__)

FAISS_METRICS = {"ip": faiss.METRIC_INNER_PRODUCT, "l2": faiss.METRIC_L2}


def higher_is_better(metric: str) -> bool:
    """Inner-product scores rank descending; L2 distances ascending."""
    return metric == "ip"


def trained_empty_index(
    vectors: np.ndarray, factory: str, metric: str, train_sample: int, seed: int = 0
) -> faiss.Index:
    """An empty index for vectors like these, IVF/PQ trained on a random sample; clone it once per shard."""
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError(f"need a non-empty 2-D array of vectors, got shape {vectors.shape}")
    try:
        index = faiss.index_factory(vectors.shape[1], factory, FAISS_METRICS[metric])
    except RuntimeError as err:
        raise ConfigError("index.factory", factory, f"a faiss index_factory string ({_first_line(err)})") from None
    if not index.is_trained:
        sample = vectors
        if len(vectors) > train_sample:
            sample = vectors[np.random.default_rng(seed).choice(len(vectors), train_sample, replace=False)]
        try:
            index.train(sample)
        except RuntimeError as err:
            raise ConfigError(
                "index.factory", factory, f"an index trainable on {len(sample)} vectors ({_first_line(err)})"
            ) from None
    return index


def build_index(vectors: np.ndarray, factory: str, metric: str, train_sample: int, seed: int = 0) -> faiss.Index:
    """An index of `vectors` (n x d), ids 0..n-1 in row order."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = trained_empty_index(vectors, factory, metric, train_sample, seed)
    index.add(vectors)
    return index


def shard_bounds(count: int, num_shards: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) row ranges of near-equal size, one per shard."""
    edges = np.linspace(0, count, num_shards + 1).round().astype(int)
    return [(int(edges[i]), int(edges[i + 1])) for i in range(num_shards)]


def configure_search(index: faiss.Index, nprobe: int, ef_search: int) -> None:
    """Apply `nprobe` (IVF) and `efSearch` (HNSW) where the index has them."""
    parameters = faiss.ParameterSpace()
    for name, value in (("nprobe", nprobe), ("efSearch", ef_search)):
        try:
            parameters.set_index_parameter(index, name, value)
        except RuntimeError:
            continue  # this index type has no such parameter


def to_gpu_if_asked(index: faiss.Index, use_gpu: bool) -> faiss.Index:
    """Move the index onto all visible GPUs when asked and faiss was built with GPU support."""
    if not use_gpu:
        return index
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        raise ConfigError(
            "index.use_gpu",
            True,
            "false here: this faiss has no GPU support or sees no GPU (pip install faiss-gpu-cu12)",
        )
    return faiss.index_cpu_to_all_gpus(index)


def _first_line(err: Exception) -> str:
    """faiss's own words, without the C++ location it prefixes them with."""
    text = str(err).strip().splitlines()[0]
    return re.split(r"\.(?:cpp|h):\d+: (?:Error: '[^']*' failed: )?", text)[-1]
