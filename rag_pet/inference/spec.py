"""What a service serves: the run's config and weights, adapters, the index version (resolved once on the driver by
`rag_pet.served_run.resolve_spec`, which finds each run's generator through its objective).

`resolve_index_version` checks the index version against the served retriever and corpus; `InferenceSpec.to_args`
is the plain data the Serve application builder receives, so `serve deploy` of the written config file starts the
same service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_pet.config import RagPetConfig, to_config, to_dict
from rag_pet.errors import ConfigError
from rag_pet.models.rag import DOC_ENCODER_DIR, QUERY_ENCODER_DIR, build_trained_encoder
from rag_pet.retrieval.corpus import corpus_sha256, load_corpus
from rag_pet.retrieval.live_index import ensure_index
from rag_pet.retrieval.store import IndexStoreError, check_compatible, read_manifest

BASE_ADAPTER = "base"
FINAL_MODEL = Path("final_checkpoint") / "model"
ADAPTER_CONFIG = "adapter_config.json"


@dataclass
class InferenceSpec:
    """The served run: its config, its trained generator (adapter or full weights), adapters by id, the index."""

    config: RagPetConfig
    model_dir: str | None = None
    full_weights: str | None = None
    adapters: dict[str, str] = field(default_factory=dict)
    default_adapter: str = BASE_ADAPTER
    index_version: int | None = None

    @property
    def retriever_dir(self) -> Path | None:
        """The run directory holding trained retriever towers, if the run trained any."""
        if self.model_dir is None:
            return None
        folder = Path(self.model_dir)
        return folder if any((folder / name).is_dir() for name in (QUERY_ENCODER_DIR, DOC_ENCODER_DIR)) else None

    @property
    def adapter_ids(self) -> list[str]:
        """The adapter ids requests may name: `base` and the served adapters."""
        return [BASE_ADAPTER, *sorted(self.adapters)]

    def resolve_adapter(self, requested: str | None) -> str:
        """The adapter id a request means (its own, or the default); KeyError naming the served ids."""
        adapter = self.default_adapter if requested is None else requested
        if adapter not in self.adapter_ids:
            raise KeyError(f"unknown adapter {adapter!r}; served adapters: {', '.join(self.adapter_ids)}")
        return adapter

    def to_args(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data (the `args` of a Serve config file)."""
        return {
            "config": to_dict(self.config),
            "model_dir": self.model_dir,
            "full_weights": self.full_weights,
            "adapters": dict(self.adapters),
            "default_adapter": self.default_adapter,
            "index_version": self.index_version,
        }

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> InferenceSpec:
        """The inverse of `to_args`, validating the config again."""
        return cls(**{**args, "config": to_config(args["config"])})


def generator_weights(config: RagPetConfig, folder: Path | None) -> tuple[str | None, str | None]:
    """(adapter directory, full-weights directory) of a run's trained generator in `folder` (where its objective
    saved it, `Objective.generator_dir`); both None when it has none (it stayed frozen)."""
    if folder is None:
        return None, None
    if config.peft.method == "full":
        return None, str(folder)
    return str(folder), None


def spec_for_model_dir(config: RagPetConfig, model_dir: Path | None, generator_dir: Path | None) -> InferenceSpec:
    """Serve `config` with the trained weights a run saved in `model_dir` (None: the configured base model), its
    generator's in `generator_dir` (None: the base generator answers)."""
    spec = InferenceSpec(config)
    if model_dir is not None:
        spec.model_dir = str(Path(model_dir).expanduser().resolve())
        adapter, spec.full_weights = generator_weights(config, generator_dir)
        if adapter is not None:
            spec.adapters[config.experiment_name] = adapter
            spec.default_adapter = config.experiment_name
    return spec


def resolve_index_version(spec: InferenceSpec) -> int:
    """`serve.index_version`, checked against the served retriever and corpus, or the newest version that matches
    them (built now if there is none)."""
    source, pinned = spec.config.index_source, spec.config.serve.index_version
    if pinned is None:
        return ensure_index(source, spec.retriever_dir)
    encoder = build_trained_encoder(source.retriever, spec.retriever_dir)
    try:
        _, manifest = read_manifest(source.root, source.name, pinned)
        check_compatible(manifest, encoder.dim, corpus_sha256(load_corpus(source.corpus)), encoder.doc_weights_hash())
    except IndexStoreError as err:
        raise ConfigError(
            "serve.index_version", pinned, f"a version built for the served retriever and corpus ({err})"
        ) from None
    return pinned
