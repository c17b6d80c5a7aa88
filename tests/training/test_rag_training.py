"""RAG training end to end on tiny models over a 64-passage SQuAD index: Ray Train workers, re-indexing, bad input."""

import time

import numpy as np
import pytest
import torch

from rag_pet.config import RagPetConfig
from rag_pet.errors import ConfigError
from rag_pet.experiment import run_experiment
from rag_pet.models.encoder import build_encoder
from rag_pet.models.rag import load_trained_retriever
from rag_pet.objectives import objective_of
from rag_pet.retrieval.live_index import LiveIndex, ensure_index
from rag_pet.training import LocalContext
from rag_pet.training.launcher import preflight
from tests.conftest import compose_config, train

pytestmark = pytest.mark.usefixtures("ray_local")


@pytest.fixture(scope="module")
def shared_indexes(tmp_path_factory):
    """One index folder for the tests that never re-index: the tiny retriever's v1 is built once."""
    return tmp_path_factory.mktemp("indexes")


def rag_config(tmp_path, *overrides: str, indexes=None) -> RagPetConfig:
    base = [
        "debug=tiny",
        "objective=rag",
        "retriever=tiny",
        "corpus.max_passages=64",
        f"index.storage_path={indexes or tmp_path / 'indexes'}",
        "index.shard_cpus=0.1",
        "index.encode_cpus=0.5",
        "rag.k=2",
        "rag.passage_max_tokens=24",
        "trainer.cpus_per_worker=1",
        "trainer.max_failures=0",
    ]
    return compose_config([*base, *overrides], run_dir=tmp_path / "run")


@pytest.mark.slow  # a two-worker Ray Train run; one-worker RAG training stays in the default suite
def test_two_worker_joint_run_trains_query_tower_and_generator(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative index.storage_path means the driver's directory, not the workers'
    config = rag_config(
        tmp_path,
        "trainer.num_workers=2",
        "rag.query_encoder=full",
        "retriever.shared=false",
        "rag.marginal=token",
        indexes="indexes",
    )
    result = train(config)
    losses = [record["loss"] for record in result.state.history]
    assert result.state.step == 4 and all(np.isfinite(losses))
    assert {record["index_version"] for record in result.state.history} == {1}
    assert result.state.task_fields == {"index_version": 1}
    assert (result.model_dir / "generator" / "adapter_config.json").is_file()
    assert (result.model_dir / "query_encoder" / "config.json").is_file()
    assert not (result.model_dir / "doc_encoder").exists()  # the frozen document tower is not saved


@pytest.mark.slow  # re-encodes the corpus during a whole run
def test_reindexing_swaps_versions_during_training(tmp_path):
    config = rag_config(
        tmp_path,
        "rag.query_encoder=full",
        "rag.doc_encoder=trainable",
        "rag.reindex_every=2",
        "rag.reindex_async=false",
        "trainer.max_steps=6",
        "trainer.log_every=1",
        "trainer.launcher=local",
    )
    result = train(config)
    versions = [record["index_version"] for record in result.state.history]
    assert versions == [1, 2, 2, 3, 3, 3]  # a new version after steps 2 and 4 (none is started at the last step)
    assert result.state.task_fields["index_version"] == 3


@pytest.mark.slow  # re-encodes the corpus during a whole run
def test_queries_keep_succeeding_while_an_asynchronous_reindex_swaps_the_index(tmp_path):
    config = rag_config(tmp_path, "rag.query_encoder=full", "rag.doc_encoder=trainable", "rag.reindex_every=1")
    version = ensure_index(config.index_source)
    encoder = build_encoder(config.retriever)
    index = LiveIndex(config.index_source, version, rank=0, broadcast=lambda value: value)
    with torch.no_grad():
        for parameter in encoder.doc_tower.parameters():
            parameter.add_(0.01)  # a document tower that has moved on
    encoder.doc_tower.requires_grad_(True)
    queries = np.random.default_rng(0).standard_normal((3, encoder.dim)).astype(np.float32)
    seen, searches = [], 0
    try:
        index.start_reindex(encoder, step=1)
        deadline = time.monotonic() + 300
        while index.version == version and time.monotonic() < deadline:
            assert index.search(queries, 2).rows.shape == (3, 2)
            searches += 1
            seen.append(index.sync())
    finally:
        index.close()
    assert index.version == version + 1 and seen[-1] == version + 1
    assert searches > 1  # every search during the build answered


def test_k_larger_than_the_corpus_is_refused_before_anything_is_built(tmp_path):
    with pytest.raises(ConfigError, match="rag.k"):
        config = rag_config(tmp_path, "rag.k=65")
        preflight(config, objective_of(config))
    assert not (tmp_path / "indexes").exists()


def test_passages_longer_than_the_generator_context_with_truncation_off_are_refused(tmp_path):
    # tiny llama has 512 positions; some SQuAD paragraphs are longer than that in its tokenizer
    config = rag_config(tmp_path, "rag.truncate_passages=false", "corpus.max_passages=null")
    with pytest.raises(ConfigError, match="rag.truncate_passages"):
        preflight(config, objective_of(config))
    with pytest.raises(ConfigError, match="rag.passage_max_tokens"):
        longer = rag_config(tmp_path, "rag.passage_max_tokens=600")
        preflight(longer, objective_of(longer))


def test_a_shared_tower_cannot_train_for_queries_against_a_frozen_document_side(tmp_path):
    with pytest.raises(ConfigError, match="retriever.shared"):
        rag_config(tmp_path, "rag.query_encoder=full")


@pytest.mark.slow  # a whole RAG experiment; the session study's rag+lora cell trains RAG in the default suite
def test_rag_experiment_reports_answers_and_retrieval_recall_and_logs_its_adapter_and_index(tmp_path, shared_indexes):
    config = rag_config(
        tmp_path,
        "trainer.launcher=local",
        "eval.before_training=true",
        "data.eval_split=train",
        "tracking=wandb_offline",
        indexes=shared_indexes,
    )
    summary = run_experiment(config)
    rows = {row["method"]: row for row in summary["rows"]}
    assert set(rows) == {"rag", "rag+lora"}
    for row in rows.values():
        assert 0.0 <= row["exact_match"] <= 1.0 and 0.0 <= row["retrieval_recall@1"] <= row["retrieval_recall@5"]
    assert rows["rag+lora"]["index_version"] == 1
    predictions = (tmp_path / "run" / "eval" / "rag_lora" / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == config.data.max_eval_examples
    assert summary["metrics"]["f1"] == rows["rag+lora"]["f1"]  # what a sweep optimises
    (run,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    records = next(run.glob("run-*.wandb")).read_bytes()
    logged = (b"train/loss", b"default-rag-lora", b"adapter_model.safetensors", b"default-rag-lora-index")
    for key in (*logged, b"manifest.json"):
        assert key in records, key


@pytest.mark.slow  # three whole runs
def test_joint_rag_under_deepspeed_zero2_and_zero3_matches_plain_pytorch_and_exports(tmp_path, shared_indexes):
    joint = ["rag.query_encoder=full", "retriever.shared=false", "trainer.launcher=local", "trainer.log_every=1"]
    plain = train(rag_config(tmp_path / "plain", *joint, indexes=shared_indexes))
    expected = [record["loss"] for record in plain.state.history]
    for stage in ("zero2", "zero3"):
        sharded = train(rag_config(tmp_path / stage, *joint, f"deepspeed={stage}", indexes=shared_indexes))
        assert [record["loss"] for record in sharded.state.history] == pytest.approx(expected, rel=1e-4), stage
        assert (sharded.model_dir / "generator" / "adapter_config.json").is_file()
        assert (sharded.model_dir / "query_encoder" / "model.safetensors").is_file()


@pytest.mark.slow  # a run, a re-index and a resumed run
def test_a_resumed_run_searches_the_index_version_its_checkpoint_was_trained_against(tmp_path):
    reindexing = [
        "rag.query_encoder=full",
        "rag.doc_encoder=trainable",
        "rag.reindex_every=2",
        "rag.reindex_async=false",
        "trainer.launcher=local",
        "trainer.log_every=1",
        "trainer.checkpoint_every=2",
    ]
    first = train(rag_config(tmp_path, *reindexing, "trainer.max_steps=4"))
    assert first.state.task_fields["index_version"] == 2
    resumed = train(rag_config(tmp_path, *reindexing, "trainer.max_steps=5"))
    assert resumed.state.resumed_at == [4]
    assert resumed.state.history[-1]["index_version"] == 2  # not v1, which the freshly built towers match


def test_the_query_tower_trains_at_its_own_learning_rate(tmp_path, shared_indexes):
    config = rag_config(
        tmp_path,
        "trainer.launcher=local",
        "rag.query_encoder=full",
        "retriever.shared=false",
        "rag.retriever_lr=1e-12",
        "eval.after_training=false",
        indexes=shared_indexes,
    )
    preflight(config, objective_of(config))
    task = objective_of(config).build_task(config, LocalContext(tmp_path / "groups", torch.device("cpu")))
    try:
        groups = task.parameter_groups()
        parameters = task.model.named_parameters()
        towers = {id(p) for name, p in parameters if name.startswith("retriever.") and p.requires_grad}
    finally:
        task.close()
    assert [group.get("lr") for group in groups] == [None, 1e-12]
    assert {id(p) for p in groups[1]["params"]} == towers
    result = train(config)
    trained = load_trained_retriever(build_encoder(config.retriever), result.model_dir).query_tower.state_dict()
    initial = build_encoder(config.retriever).query_tower.state_dict()
    assert max((trained[name] - initial[name]).abs().max().item() for name in initial) < 1e-6  # barely moved
    assert result.state.step == config.trainer.max_steps and (result.model_dir / "generator").is_dir()
