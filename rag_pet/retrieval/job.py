"""The `index` job: build a new index version and report where it went."""

from __future__ import annotations

from dataclasses import asdict

from rag_pet.config import RagPetConfig


def run_index_job(config: RagPetConfig) -> dict:
    """Encode the configured corpus with the configured retriever and write a new sharded index version."""
    import ray

    from rag_pet.retrieval.build import build_index_version

    if not ray.is_initialized():
        ray.init()
    directory, manifest = build_index_version(config.index, config.retriever)
    return {"directory": str(directory), **asdict(manifest)}
