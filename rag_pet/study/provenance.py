"""Where a cell's result came from: the code revision, the package versions and content hashes of the weights, data
and index it read, so that a re-run study re-uses a finished cell only when none of them changed, and says why it
ran one again."""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from dataclasses import asdict
from pathlib import Path

from rag_pet.config import CorpusConfig, DataConfig, IndexSource, ModelConfig, RetrieverConfig
from rag_pet.data.documents import documents_files
from rag_pet.data.fictional import fictional_articles
from rag_pet.data.nq_open import NQ_OPEN_FILES
from rag_pet.data.resources import NQ_OPEN_DIR, SQUAD_DEV
from rag_pet.errors import ConfigError
from rag_pet.retrieval import store
from rag_pet.study.cells import Cell
from rag_pet.study.environment import package_versions

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the rag_pet package whose checkout is recorded
GIT_TIMEOUT_S = 10.0
UNCOMPARED_PACKAGES = ("wandb",)  # tracking: logs a result, does not compute it
CHANGED = {
    "model": "model weights changed",
    "retriever": "retriever weights changed",
    "data": "data hash changed",
    "index": "index changed",
}


def cell_provenance(model: ModelConfig, data: DataConfig, index: IndexSource | None = None) -> dict:
    """What a run's result depends on besides its config: the code (git revision, uncommitted changes), package
    versions, and sha256 hashes of the generator, the data and, for a run that retrieves (`index`), the retriever
    and the index version it reads."""
    found = index_provenance(index) if index is not None else {"sha256": None, "version": None}
    return {
        **code_provenance(),
        "packages": {name: v for name, v in package_versions().items() if name not in UNCOMPARED_PACKAGES},
        "hashes": {
            "model": model_sha256(model),
            "retriever": retriever_sha256(index.retriever) if index is not None else None,
            "data": data_sha256(data),
            "index": found["sha256"],
        },
        "index_version": found["version"],
    }


def provenance_of(cell: Cell) -> dict:
    """`cell_provenance` of a study cell: its generator and data, and its index when the method retrieves."""
    config = cell.config
    return cell_provenance(config.model, config.data, config.index_source if cell.method.retrieves else None)


def code_provenance(directory: Path | None = None) -> dict:
    """The git commit of the checkout that tracks `directory` (default: the rag_pet package), whether its tracked
    files differ from that commit, and a hash of the difference; all None when no git checkout tracks it (an
    installed package, whose version under `packages` stands in)."""
    directory = directory or PACKAGE_DIR
    if not _git(directory, "ls-files", "--", "."):
        return {"revision": None, "dirty": None, "diff_sha256": None}
    head = _git(directory, "rev-parse", "--verify", "HEAD")
    status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    dirty = status is None or bool(status.strip())
    diff = _git(directory, "diff", "--no-ext-diff", "--no-color", "--binary", "HEAD") if dirty else None
    return {
        "revision": head.decode().strip() if head else None,
        "dirty": dirty,
        "diff_sha256": hashlib.sha256(diff).hexdigest() if dirty and diff else None,
    }


def _git(directory: Path, *args: str) -> bytes | None:
    """stdout of a git command run in `directory`; None when git is missing, fails or takes too long."""
    command = ["git", "--no-optional-locks", "-C", str(directory), *args]
    try:
        done = subprocess.run(command, capture_output=True, timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def file_sha256(path: Path) -> str:
    """sha256 of a file, computed once per process for each (path, size, mtime)."""
    stat = path.stat()
    return _cached_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    return store.file_sha256(Path(path))


def _digest(value: object) -> str:
    """sha256 of a JSON-able value, keys sorted."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def directory_sha256(directory: Path) -> str | None:
    """A hash of the names and contents of the files directly in `directory` (a transformers model folder: weights,
    config, tokenizer; sub-folders such as old checkpoints are left out); None when there is no such folder."""
    if not directory.is_dir():
        return None
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    return _digest({p.name: file_sha256(p) for p in files})


def model_sha256(model: ModelConfig) -> str | None:
    """The generator's weights: its pretrained folder's files, or, for a tiny model built from config, the model
    section (its `init_seed` decides the weights); None when the folder is not a model (the run fails on it)."""
    from rag_pet.models.generator import weights_dir

    try:
        directory = weights_dir(model)
    except ConfigError:
        return None
    return _digest(asdict(model)) if directory is None else directory_sha256(directory)


def retriever_sha256(retriever: RetrieverConfig) -> str | None:
    """The bi-encoder's weights, as `model_sha256` hashes the generator's."""
    from rag_pet.models.encoder import encoder_source

    if retriever.source == "tiny":
        return _digest(asdict(retriever))
    try:
        _, directory = encoder_source(retriever)
    except ConfigError:
        return None
    return directory_sha256(directory)


def data_files(data: DataConfig) -> list[Path]:
    """The files the QA dataset is read from: bundled SQuAD or NQ-open, or the user's JSONL files or documents folder
    (none for the generated fictional set, whose articles `data_sha256` hashes)."""
    if data.name == "squad":
        return [SQUAD_DEV]
    if data.name == "fictional":
        return []
    if data.name == "nq_open":
        return [NQ_OPEN_DIR / name for name in sorted(NQ_OPEN_FILES.values())]
    folder = Path(data.path).expanduser()
    if data.name == "documents":
        return documents_files(folder)
    return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []


def data_sha256(data: DataConfig) -> str:
    """The training and evaluation data: the dataset's files (or the generated articles themselves, so a changed
    generator re-runs the cells) and the data section that splits and cuts them."""
    content = {"config": asdict(data), "files": {p.name: file_sha256(p) for p in data_files(data)}}
    if data.name == "fictional":
        content["articles"] = _digest(fictional_articles(data.fictional_seed, data.fictional_entities))
    return _digest(content)


def index_provenance(source: IndexSource) -> dict:
    """The index version a retrieving run reads (the newest built from its corpus with its document encoder, as
    evaluation finds it) and the sha256 of its manifest; while none is built, a hash of what will identify it
    (corpus and encoder hashes), with version None."""
    corpus_hash, encoder_hash = _index_inputs(
        json.dumps(asdict(source.corpus)), json.dumps(asdict(source.retriever)), retriever_sha256(source.retriever)
    )
    version = store.newest_matching_version(source.root, source.name, corpus_hash, encoder_hash)
    if version is None:
        return {"version": None, "sha256": _digest({"corpus": corpus_hash, "encoder": encoder_hash})}
    manifest = store.version_dir(source.root, source.name, version) / store.MANIFEST
    return {"version": version, "sha256": file_sha256(manifest)}


@functools.lru_cache(maxsize=16)
def _index_inputs(corpus: str, retriever: str, weights: str | None) -> tuple[str, str]:
    """The corpus hash and document-encoder weight hash an index is found by, once per process (`weights` keys the
    cache to the encoder's files)."""
    from rag_pet.models.rag import build_trained_encoder
    from rag_pet.retrieval.corpus import corpus_sha256, load_corpus

    passages = load_corpus(CorpusConfig(**json.loads(corpus)))
    return corpus_sha256(passages), build_trained_encoder(RetrieverConfig(**json.loads(retriever))).doc_weights_hash()


def provenance_changes(old: dict | None, new: dict) -> list[str]:
    """Why a result recorded with provenance `old` may differ from one made now with `new`, as short phrases;
    empty when the code, packages, weights, data and index are the same.

    Uncommitted changes: a result from a dirty tree is re-used only on a tree dirty with the very same changes to
    tracked files (a crashed study resumes on a work-in-progress tree; nothing else re-uses its cells), and a
    result from a clean tree is never re-used on a dirty one. Files git does not track are not looked at."""
    if not old:
        return ["no provenance recorded"]
    reasons = []
    if old.get("revision") != new["revision"]:
        reasons.append(f"code revision {_short(old.get('revision'))} -> {_short(new['revision'])}")
    reasons += _dirty_change(old, new)
    packages = _package_changes(old.get("packages") or {}, new["packages"])
    if packages:
        reasons.append("package versions changed: " + ", ".join(packages))
    hashes = old.get("hashes") or {}
    reasons += [phrase for key, phrase in CHANGED.items() if hashes.get(key) != new["hashes"][key]]
    return reasons


def _short(revision: str | None) -> str:
    return revision[:7] if revision else "none"


def _dirty_change(old: dict, new: dict) -> list[str]:
    if old.get("dirty") and new["dirty"]:
        same = old.get("diff_sha256") is not None and old.get("diff_sha256") == new["diff_sha256"]
        return [] if same else ["uncommitted changes differ"]
    if old.get("dirty"):
        return ["tree was dirty"]
    return ["tree is dirty"] if new["dirty"] else []


def _package_changes(old: dict, new: dict) -> list[str]:
    names = sorted(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))
    return [f"{name} {old.get(name, 'none')} -> {new.get(name, 'none')}" for name in names]


def stale_reason(record: dict, cell: Cell, provenance: dict, base: dict | None = None) -> str | None:
    """Why a cell's earlier `record` no longer stands for `cell`, as one line: its overrides changed, or its
    provenance (`provenance_changes`), or, for a freshness cell, its base cell ran again since (`base`: the base's
    record now, None when it runs again); None when the record still stands."""
    if record.get("overrides") != list(cell.overrides):
        return "overrides changed"
    reasons = provenance_changes(record.get("provenance"), provenance)
    if cell.after and (base is None or record.get("base_finished_at") != base.get("finished_at")):
        reasons.append(f"new weights from base cell {cell.after}")
    return "; ".join(reasons) or None


def rerun_reason(previous: dict | None, cell: Cell, provenance: dict, base: dict | None = None) -> str | None:
    """Why `cell` ran although it had a record (`previous`): it was stale, or that run failed; None for a first run."""
    if previous is None:
        return None
    if reason := stale_reason(previous, cell, provenance, base):
        return reason
    return "earlier run failed" if previous.get("status") != "done" else "ran again"
