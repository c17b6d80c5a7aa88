"""Provenance of a study's cells: what is hashed and recorded, and when a finished cell is re-used or runs again."""

import json
import shutil
import subprocess
from dataclasses import asdict

import pytest

from rag_pet.config import (
    CorpusConfig,
    DataConfig,
    IndexConfig,
    IndexSource,
    ModelConfig,
    RagPetConfig,
    RetrieverConfig,
)
from rag_pet.objectives import study_method
from rag_pet.retrieval import store
from rag_pet.study import provenance, records, runner
from rag_pet.study.cells import Cell
from rag_pet.study.names import CELLS_DIR, FRESH_TRAINING, MAIN
from rag_pet.study.provenance import (
    cell_provenance,
    code_provenance,
    data_sha256,
    index_provenance,
    model_sha256,
    provenance_changes,
    rerun_reason,
    stale_reason,
)
from rag_pet.training import launcher

GIT = shutil.which("git")
PROVENANCE = {
    "revision": "a" * 40,
    "dirty": False,
    "diff_sha256": None,
    "packages": {"rag_pet": "0.1.0", "torch": "2.4.0"},
    "hashes": {"model": "m1", "retriever": None, "data": "d1", "index": None},
    "index_version": None,
}


def _with(**changes) -> dict:
    """`PROVENANCE` with top-level keys or (`model=`, `data=`, ...) hashes replaced."""
    hashes = {key: changes.pop(key) for key in list(changes) if key in PROVENANCE["hashes"]}
    return {**PROVENANCE, **changes, "hashes": {**PROVENANCE["hashes"], **hashes}}


def _model_dir(folder, weights: bytes):
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def _jsonl_dir(folder, answer: str):
    folder.mkdir(exist_ok=True)
    for split in ("train", "validation"):
        (folder / f"{split}.jsonl").write_text(json.dumps({"question": "Who?", "answers": [answer]}) + "\n")
    return folder


def test_the_weight_hash_follows_the_weight_files_and_a_tiny_model_its_config(tmp_path):
    model = ModelConfig(source="path", path=str(_model_dir(tmp_path / "model", b"weights-1")))
    before = model_sha256(model)
    assert before == cell_provenance(model, DataConfig())["hashes"]["model"]
    _model_dir(tmp_path / "model", b"weights-2, longer")
    assert model_sha256(model) != before
    _model_dir(tmp_path / "model", b"weights-1")  # the same bytes again: the same hash
    assert model_sha256(model) == before
    (tmp_path / "model" / "checkpoint-5").mkdir()  # sub-folders (old checkpoints) are not the model
    assert model_sha256(model) == before

    assert model_sha256(ModelConfig(source="tiny")) == model_sha256(ModelConfig(source="tiny"))
    assert model_sha256(ModelConfig(source="tiny", init_seed=1)) != model_sha256(ModelConfig(source="tiny"))


def test_the_data_hash_follows_the_jsonl_files_and_the_split_settings(tmp_path):
    data = DataConfig(name="jsonl", path=str(_jsonl_dir(tmp_path / "data", "Ada")))
    before = data_sha256(data)
    assert before == cell_provenance(ModelConfig(source="tiny"), data)["hashes"]["data"]
    _jsonl_dir(tmp_path / "data", "Ada Lovelace")
    assert data_sha256(data) != before
    assert data_sha256(DataConfig(split_seed=1)) != data_sha256(DataConfig())


def test_the_fictional_data_hash_follows_the_generated_articles(monkeypatch):
    data = DataConfig(name="fictional")
    before = data_sha256(data)
    assert (
        before
        == data_sha256(DataConfig(name="fictional"))
        != data_sha256(DataConfig(name="fictional", fictional_seed=1))
    )
    # a changed generator (same seed and size, other articles) is a changed data hash
    monkeypatch.setattr(
        provenance, "fictional_articles", lambda seed, entities: ({"title": "Other", "paragraphs": []},)
    )
    assert data_sha256(data) != before


def test_a_cell_that_does_not_retrieve_records_no_retriever_or_index():
    recorded = cell_provenance(ModelConfig(source="tiny"), DataConfig())
    assert recorded["hashes"]["retriever"] is None and recorded["hashes"]["index"] is None
    assert recorded["packages"]["torch"] and "wandb" not in recorded["packages"]


def test_the_index_is_identified_before_it_is_built_and_by_its_manifest_after(tmp_path):
    source = IndexSource(
        CorpusConfig(max_passages=8), IndexConfig(storage_path=str(tmp_path / "indexes")), RetrieverConfig("tiny")
    )
    planned = index_provenance(source)
    assert planned["version"] is None and planned["sha256"]
    assert index_provenance(source) == planned

    corpus_hash, encoder_hash = provenance._index_inputs(
        json.dumps(asdict(source.corpus)), json.dumps(asdict(source.retriever)), "unused: keys the cache"
    )
    folder = store.version_dir(source.root, source.name, 1)
    folder.mkdir(parents=True)
    manifest = {"corpus_sha256": corpus_hash, "encoder_weights_sha256": encoder_hash, "created": "1"}
    (folder / store.MANIFEST).write_text(json.dumps(manifest))
    built = index_provenance(source)
    assert built == {"version": 1, "sha256": store.file_sha256(folder / store.MANIFEST)}

    (folder / store.MANIFEST).write_text(json.dumps({**manifest, "created": "2 (rebuilt)"}))
    assert index_provenance(source)["sha256"] != built["sha256"]
    recorded = cell_provenance(ModelConfig(source="tiny"), DataConfig(), source)
    assert recorded["index_version"] == 1 and recorded["hashes"]["retriever"]


def _git(repo, *args):
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(GIT is None, reason="needs git")
def test_the_revision_and_uncommitted_changes_of_the_checkout_are_recorded(tmp_path, monkeypatch):
    repo, package = tmp_path / "repo", tmp_path / "repo" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("x = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "first")
    head = _git(repo, "rev-parse", "HEAD").strip()

    assert code_provenance(package) == {"revision": head, "dirty": False, "diff_sha256": None}
    (package / "notes.txt").write_text("untracked files do not count\n")
    assert code_provenance(package)["dirty"] is False

    (package / "__init__.py").write_text("x = 2\n")
    edited = code_provenance(package)
    assert edited["revision"] == head and edited["dirty"] is True and edited["diff_sha256"]
    assert code_provenance(package) == edited  # the same changes: the same hash
    (package / "__init__.py").write_text("x = 3\n")
    assert code_provenance(package)["diff_sha256"] != edited["diff_sha256"]

    monkeypatch.setattr(provenance, "PACKAGE_DIR", package)
    assert cell_provenance(ModelConfig(source="tiny"), DataConfig())["revision"] == head

    outside = tmp_path / "not_a_checkout"
    outside.mkdir()
    assert code_provenance(outside) == {"revision": None, "dirty": None, "diff_sha256": None}


@pytest.mark.parametrize(
    ("old", "new", "reasons"),
    [
        (PROVENANCE, PROVENANCE, []),
        (PROVENANCE, _with(revision="b" * 40), ["code revision aaaaaaa -> bbbbbbb"]),
        (PROVENANCE, _with(data="d2"), ["data hash changed"]),
        (PROVENANCE, _with(model="m2", index="i2"), ["model weights changed", "index changed"]),
        (
            PROVENANCE,
            _with(packages={"rag_pet": "0.1.0", "torch": "2.5.0"}),
            ["package versions changed: torch 2.4.0 -> 2.5.0"],
        ),
        (_with(dirty=True, diff_sha256="x"), PROVENANCE, ["tree was dirty"]),
        (PROVENANCE, _with(dirty=True, diff_sha256="x"), ["tree is dirty"]),
        (_with(dirty=True, diff_sha256="x"), _with(dirty=True, diff_sha256="y"), ["uncommitted changes differ"]),
        (_with(dirty=True, diff_sha256="x"), _with(dirty=True, diff_sha256="x"), []),
        (None, PROVENANCE, ["no provenance recorded"]),
    ],
)
def test_provenance_changes_name_what_changed(old, new, reasons):
    assert provenance_changes(old, new) == reasons


def _cell(tmp_path, cell_id="lora-seed0", after=None, overrides=("seed=0",)) -> Cell:
    config = RagPetConfig(run_dir=str(tmp_path / "study" / CELLS_DIR / cell_id))
    kind = FRESH_TRAINING["text"] if after else MAIN
    return Cell(cell_id, study_method("lora"), 0, kind, overrides, config, after=after)


def _write(tmp_path, cell, **fields) -> dict:
    record = {"id": cell.id, "overrides": list(cell.overrides), "status": "done", "provenance": PROVENANCE}
    record.update(finished_at="2025-01-01T00:00:00+00:00", **fields)
    path = tmp_path / "study" / CELLS_DIR / f"{cell.id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    (path.parent / cell.id).mkdir(exist_ok=True)  # its run directory
    return record


@pytest.fixture
def current(monkeypatch):
    """The provenance cells have now (a dict the test may change), instead of hashing the real checkout."""
    now = dict(PROVENANCE)
    monkeypatch.setattr(records, "provenance_of", lambda cell: now)
    return now


def test_an_unchanged_finished_cell_is_re_used(tmp_path, current):
    cell = _cell(tmp_path)
    record = _write(tmp_path, cell)
    assert records.finished_record(tmp_path / "study", cell) == record
    assert (tmp_path / "study" / CELLS_DIR / cell.id).is_dir()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"revision": "b" * 40}, "code revision aaaaaaa -> bbbbbbb"),
        ({"hashes": {**PROVENANCE["hashes"], "data": "d2"}}, "data hash changed"),
        ({"dirty": True, "diff_sha256": "x"}, "tree is dirty"),
    ],
)
def test_a_cell_whose_provenance_changed_runs_again_from_an_empty_run_directory(tmp_path, current, change, reason):
    cell = _cell(tmp_path)
    record = _write(tmp_path, cell)
    current.update(change)
    assert records.finished_record(tmp_path / "study", cell) is None
    assert not (tmp_path / "study" / CELLS_DIR / cell.id).exists()
    assert stale_reason(record, cell, current) == reason
    assert rerun_reason(record, cell, current) == reason


def test_changed_overrides_and_a_failed_run_are_reasons_too(tmp_path, current):
    cell = _cell(tmp_path)
    record = _write(tmp_path, cell, status="failed")
    assert records.finished_record(tmp_path / "study", cell) is None
    assert (tmp_path / "study" / CELLS_DIR / cell.id).is_dir()  # kept: the run may resume from its checkpoint
    assert rerun_reason(record, cell, current) == "earlier run failed"
    assert rerun_reason(None, cell, current) is None
    assert stale_reason(record, _cell(tmp_path, overrides=("seed=1",)), current) == "overrides changed"


def test_a_freshness_cell_is_re_used_only_with_the_base_record_it_was_made_from(tmp_path, current):
    base_cell, cell = _cell(tmp_path), _cell(tmp_path, "lora-seed0.fresh_text", after="lora-seed0")
    base = _write(tmp_path, base_cell)
    record = _write(tmp_path, cell, base_finished_at=base["finished_at"])
    assert records.finished_record(tmp_path / "study", cell, base) == record
    assert stale_reason(record, cell, current, None) == "new weights from base cell lora-seed0"  # base runs again
    rerun_base = {**base, "finished_at": "2025-02-01T00:00:00+00:00"}
    assert stale_reason(record, cell, current, rerun_base) == "new weights from base cell lora-seed0"


class _FakeRay:
    """Stands in for Ray in `run_cells`: a cell 'runs' when started and reports one metrics row."""

    def __init__(self):
        self.started: list[str] = []

    def remote(self, cell, threads):
        self.started.append(cell.id)
        return cell.id

    @staticmethod
    def wait(refs, num_returns):
        return refs[:num_returns], refs[num_returns:]

    @staticmethod
    def get(ref):
        return {"rows": [{"method": "lora", "f1": 0.5}]}


def test_run_cells_re_runs_a_changed_base_and_its_freshness_cell_and_records_why(tmp_path, current, monkeypatch):
    fake = _FakeRay()
    monkeypatch.setattr(runner, "_run_cell", fake)
    monkeypatch.setattr(runner.ray, "wait", fake.wait)
    monkeypatch.setattr(runner.ray, "get", fake.get)
    monkeypatch.setattr(runner.ray, "cluster_resources", lambda: {"CPU": 2})
    monkeypatch.setattr(launcher, "_alive_nodes", lambda: [{"CPU": 2.0}])  # the same one-node cluster
    base_cell, cell = _cell(tmp_path), _cell(tmp_path, "lora-seed0.fresh_text", after="lora-seed0")
    base = _write(tmp_path, base_cell, provenance=_with(model="old weights"))
    _write(tmp_path, cell, base_finished_at=base["finished_at"])

    base_record, fresh = runner.run_cells([base_cell, cell], tmp_path / "study", parallel=1)
    assert fake.started == ["lora-seed0", "lora-seed0.fresh_text"]
    assert base_record["rerun_reason"] == "model weights changed" and base_record["provenance"] == current
    assert fresh["rerun_reason"] == "new weights from base cell lora-seed0"
    assert fresh["base_finished_at"] == base_record["finished_at"]

    fake.started.clear()
    again = runner.run_cells([base_cell, cell], tmp_path / "study", parallel=1)
    assert fake.started == [] and again == [base_record, fresh]
