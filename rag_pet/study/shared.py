"""Work a study does once for all its cells: one index per retriever and corpus, and (freshness) one grown index
per retriever when the new articles arrive; each timed and measured."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from rag_pet.config import IndexSource, RagPetConfig
from rag_pet.retrieval.corpus import load_corpus
from rag_pet.retrieval.live_index import ensure_index
from rag_pet.retrieval.store import version_dir, versions
from rag_pet.storage import write_json_atomic
from rag_pet.study.index_cost import encoding_flops, index_flops

logger = logging.getLogger(__name__)
SHARED_FILE = "shared.json"


def index_key(source: IndexSource) -> str:
    """Which index a cell reads, by family and retriever (the corpus's exclusions are the freshness state)."""
    return f"{source.name}@{source.retriever.source}"


def build_shared_indexes(
    configs: list[RagPetConfig], fresh_configs: list[RagPetConfig], study_dir: Path
) -> dict[str, dict]:
    """Find or build the index each distinct retriever of the retrieving cells reads, then, for the freshness
    cells, grow it by the new articles (encoding only their passages). Per index: version, build seconds (None
    when an earlier run built it), size, vectors and the FLOPs of encoding its corpus; and under `fresh` the same
    for the grown version, with the passages added and the FLOPs of encoding only them."""
    path = study_dir / SHARED_FILE
    known = json.loads(path.read_text()) if path.is_file() else {}
    shared: dict[str, dict] = {}
    for config in configs:
        source, key = config.index_source, index_key(config.index_source)
        if key not in shared:
            shared[key] = _timed(lambda source=source: ensure_index(source), source, known.get(key, {}))
            shared[key]["encode_flops"] = index_flops(source)
    for config in fresh_configs:
        key = index_key(config.index_source)
        if key in shared and "fresh" not in shared[key]:
            base = next(c.index_source for c in configs if index_key(c.index_source) == key)
            shared[key]["fresh"] = _grow(base, config.index_source, known.get(key, {}).get("fresh", {}))
    write_json_atomic(path, shared)
    return shared


def _timed(build, source: IndexSource, known: dict) -> dict:
    """Run `build` (returns a version) and describe the version: a version that existed before keeps the build
    time an earlier run of the study recorded."""
    before = set(versions(source.root, source.name))
    started = time.perf_counter()
    version = build()
    seconds = time.perf_counter() - started if version not in before else None
    if seconds is None and known.get("version") == version:
        seconds = known.get("build_seconds")
    directory = version_dir(source.root, source.name, version)
    manifest = json.loads((directory / "manifest.json").read_text())
    logger.info("index %s v%d ready", source.name, version)
    return {
        "index": source.name,
        "version": version,
        "directory": str(directory),
        "build_seconds": seconds,
        "size_bytes": sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()),
        "num_vectors": manifest["num_vectors"],
    }


def _grow(base: IndexSource, grown: IndexSource, known: dict) -> dict:
    """The grown index's version (built from `base`'s cached vectors plus the new passages, unless one exists),
    with the passages it added and the FLOPs of encoding them."""
    entry = _timed(lambda: ensure_index(grown, base_corpus=base.corpus), grown, known)
    present = set(load_corpus(base.corpus))
    added = [p for p in load_corpus(grown.corpus) if p not in present]
    entry.update(passages_added=len(added), encode_flops=encoding_flops(grown, added))
    return entry
