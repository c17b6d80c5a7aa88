"""`jobs.index` then `jobs.evaluate eval.task=retrieval`, through their library functions, on a tiny retriever."""

import json

import pytest

from rag_pet.experiment import build_index, evaluate_model
from rag_pet.retrieval.store import IndexStoreError

OVERRIDES = (
    "retriever=tiny",
    "corpus.max_passages=64",
    "index.part_size=32",
    "index.encode_cpus=0.5",
    "index.shard_cpus=0.1",
    "eval.task=retrieval",
    "eval.retrieval_k=20",
)


@pytest.mark.slow  # builds an index, then a whole retrieval evaluation
def test_index_then_retrieval_evaluation_writes_metrics_per_method(ray_local, tiny_config, tmp_path):
    storage = f"index.storage_path={tmp_path / 'indexes'}"
    built = build_index(tiny_config(*OVERRIDES, storage))
    assert built["version"] == 1 and built["num_vectors"] == 64 and built["num_shards"] == 2

    summary = evaluate_model(tiny_config(*OVERRIDES, storage, "data.max_eval_examples=16"))
    assert [row["method"] for row in summary["rows"]] == ["dense", "bm25", "hybrid"]
    for row in summary["rows"]:
        assert row["queries"] == 16 and 0.0 <= row["ndcg@10"] <= 1.0
        metrics = json.loads(open(f"{summary['run_dir']}/eval/retrieval_{row['method']}/metrics.json").read())
        assert metrics["recall@20"] == row["recall@20"]

    other_weights = (*OVERRIDES, storage, "retriever.init_seed=1", "eval.retrieval_methods=[dense]")
    with pytest.raises(IndexStoreError, match="other document-encoder weights"):
        evaluate_model(tiny_config(*other_weights, "index.version=1"))  # a pinned version must fit the encoder
    evaluate_model(tiny_config(*other_weights))  # unpinned: the newest version built with it, built now if none
    assert sorted(p.name for p in (tmp_path / "indexes" / "squad_Flat").glob("v*")) == ["v000001", "v000002"]
