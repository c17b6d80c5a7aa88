"""Versioned index directories: `<storage>/<name>/v000001/` with a manifest, written atomically, verified on load.

v000001/manifest.json        what built it (encoder + weight hash, corpus hash, factory, dim, metric, ...)
v000001/ids.json             document ids in row order (row i has global id i)
v000001/shard_000/index.faiss, vectors.npy   one directory per shard
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np

from rag_pet.errors import RagPetError
from rag_pet.storage import write_json_atomic

MANIFEST = "manifest.json"
IDS = "ids.json"
VERSION_PATTERN = re.compile(r"^v(\d{6})$")


class IndexStoreError(RagPetError):
    """An index version is missing, incomplete, corrupt, or does not match what is asked of it."""


@dataclass
class Manifest:
    """What an index version was built from; loading refuses a version whose inputs have changed."""

    name: str
    version: int
    encoder: str
    encoder_weights_sha256: str
    corpus: str
    corpus_sha256: str
    factory: str
    metric: str
    dim: int
    num_vectors: int
    num_shards: int
    shard_bounds: list[list[int]]
    files_sha256: dict[str, str] = field(default_factory=dict)
    created: str = ""


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versions(root: Path, name: str) -> list[int]:
    """Complete versions of index `name`, ascending (temporary directories are ignored)."""
    folder = Path(root) / name
    found = [VERSION_PATTERN.match(p.name) for p in folder.iterdir()] if folder.is_dir() else []
    return sorted(int(m.group(1)) for m in found if m)


def version_dir(root: Path, name: str, version: int) -> Path:
    """The directory of one version."""
    return Path(root) / name / f"v{version:06d}"


def write_version(root: Path, manifest: Manifest, ids: list[str], shards: list[tuple[faiss.Index, np.ndarray]]) -> Path:
    """Write shards, ids and manifest into a temporary directory, then rename it to the next free version."""
    folder = Path(root) / manifest.name
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=folder))
    try:
        (staging / IDS).write_text(json.dumps(ids))
        for number, (index, vectors) in enumerate(shards):
            shard = staging / f"shard_{number:03d}"
            shard.mkdir()
            faiss.write_index(index, str(shard / "index.faiss"))
            np.save(shard / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32))
        manifest.files_sha256 = {
            str(p.relative_to(staging)): file_sha256(p) for p in sorted(staging.rglob("*")) if p.is_file()
        }
        manifest.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for _ in range(100):
            manifest.version = (versions(root, manifest.name) or [0])[-1] + 1
            write_json_atomic(staging / MANIFEST, asdict(manifest))
            target = version_dir(root, manifest.name, manifest.version)
            try:
                os.rename(staging, target)
                return target
            except OSError:
                if not target.exists():
                    raise
        raise IndexStoreError(f"index error: could not claim a version number under {folder}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_manifest(root: Path, name: str, version: int | None = None) -> tuple[Path, Manifest]:
    """The directory and manifest of `version` (default: the newest), with every file checked against its hash."""
    available = versions(root, name)
    if not available:
        raise IndexStoreError(
            f"index error: no index named {name!r} under {root}; build one with `python -m jobs.index`"
        )
    version = available[-1] if version is None else version
    if version not in available:
        raise IndexStoreError(f"index error: {name!r} has versions {available}, not {version}")
    directory = version_dir(root, name, version)
    try:
        manifest = Manifest(**json.loads((directory / MANIFEST).read_text()))
    except (OSError, ValueError, TypeError) as err:
        raise IndexStoreError(
            f"index error: {directory / MANIFEST} is unreadable ({err}); rebuild this version"
        ) from None
    for relative, expected in manifest.files_sha256.items():
        path = directory / relative
        if not path.is_file() or file_sha256(path) != expected:
            raise IndexStoreError(
                f"index error: {path} is missing or corrupt (sha256 differs from the manifest); rebuild it"
            )
    return directory, manifest


def newest_matching_version(root: Path, name: str, corpus_sha256: str, encoder_sha256: str) -> int | None:
    """The newest version built from this corpus with these document-encoder weights, or None."""
    for version in reversed(versions(root, name)):
        try:
            manifest = json.loads((version_dir(root, name, version) / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
        if manifest.get("corpus_sha256") == corpus_sha256 and manifest.get("encoder_weights_sha256") == encoder_sha256:
            return version
    return None


def check_compatible(
    manifest: Manifest, dim: int, corpus_sha256: str | None = None, encoder_sha256: str | None = None
) -> None:
    """Refuse an index built for another encoder dimension, corpus or document-encoder weights."""
    label = f"index error: {manifest.name} v{manifest.version}"
    if manifest.dim != dim:
        raise IndexStoreError(f"{label} holds {manifest.dim}-d vectors but the encoder gives {dim}-d")
    if corpus_sha256 is not None and manifest.corpus_sha256 != corpus_sha256:
        raise IndexStoreError(f"{label} was built from another corpus (sha256 differs); rebuild it")
    if encoder_sha256 is not None and manifest.encoder_weights_sha256 != encoder_sha256:
        raise IndexStoreError(f"{label} was built with other document-encoder weights; rebuild it")
