"""What a service serves, resolved once on the driver: the run's config and weights, adapters, the index version.

`resolve_spec` checks everything a replica would otherwise fail on late (missing weights, adapters trained on
another base model, an index version built with another document encoder); `InferenceSpec.to_args` is the plain data
the Serve application builder receives, so `serve deploy` of the written config file starts the same service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_pet.config import RagPetConfig, to_config, to_dict
from rag_pet.errors import ConfigError
from rag_pet.models.rag import DOC_ENCODER_DIR, QUERY_ENCODER_DIR, build_trained_encoder
from rag_pet.objectives import objective_of
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


def _run_config(run_dir: Path, current: RagPetConfig) -> RagPetConfig:
    """The config a finished run was trained with, with the `serve` section of the current command line."""
    path = run_dir / "config.json"
    if not path.is_file():
        raise ConfigError("serve.run_dir", str(run_dir), "a training run directory (it holds config.json)")
    saved = json.loads(path.read_text())
    saved["serve"] = to_dict(current)["serve"]
    return to_config(saved)


def _generator_weights(config: RagPetConfig, model_dir: Path) -> tuple[str | None, str | None]:
    """(adapter directory, full-weights directory) of a run's trained generator; both None when it stayed frozen."""
    folder = objective_of(config).generator_dir(config, model_dir)
    if folder is None:
        return None, None
    if config.peft.method == "full":
        return None, str(folder)
    return str(folder), None


def _adapter_dir(adapter_id: str, location: str, base: RagPetConfig) -> str:
    """The adapter directory `serve.adapters.<id>` names (a run directory or an adapter folder), checked."""
    path = Path(location).expanduser().resolve()
    name = f"serve.adapters.{adapter_id}"
    if (path / ADAPTER_CONFIG).is_file():
        return str(path)
    if not (path / "config.json").is_file():
        raise ConfigError(name, location, "a training run directory or a folder holding adapter_config.json")
    run = json.loads((path / "config.json").read_text())
    if run.get("model") != to_dict(base)["model"]:
        raise ConfigError(name, location, f"a run trained on the served base model ({base.model.source})")
    adapter, _ = _generator_weights(to_config(run), path / FINAL_MODEL)
    if adapter is None or not (Path(adapter) / ADAPTER_CONFIG).is_file():
        raise ConfigError(name, location, "a finished PEFT run (its final_checkpoint/model holds an adapter)")
    return adapter


def _check_adapter_types(adapters: dict[str, str]) -> None:
    """One PEFT type for all served adapters: peft keeps several adapters of one kind on one base model."""
    kinds = {i: json.loads((Path(d) / ADAPTER_CONFIG).read_text())["peft_type"] for i, d in adapters.items()}
    if len(set(kinds.values())) > 1:
        listing = ", ".join(f"{i}={k}" for i, k in sorted(kinds.items()))
        raise ConfigError("serve.adapters", listing, "adapters of one PEFT type (serve the others separately)")


def spec_for_model_dir(config: RagPetConfig, model_dir: Path | None) -> InferenceSpec:
    """Serve `config` with the trained weights a run saved in `model_dir` (None: the configured base model)."""
    spec = InferenceSpec(config)
    if model_dir is not None:
        spec.model_dir = str(Path(model_dir).expanduser().resolve())
        adapter, spec.full_weights = _generator_weights(config, Path(spec.model_dir))
        if adapter is not None:
            spec.adapters[config.experiment_name] = adapter
            spec.default_adapter = config.experiment_name
    return spec


def resolve_spec(config: RagPetConfig) -> InferenceSpec:
    """The spec `config.serve` describes: a finished run (`serve.run_dir`) or the configured base model, and the
    extra adapters of `serve.adapters`."""
    serve = config.serve
    model_dir = None
    if serve.run_dir:
        run_dir = Path(serve.run_dir).expanduser().resolve()
        config = _run_config(run_dir, config)
        model_dir = run_dir / FINAL_MODEL
        if not model_dir.is_dir():
            raise ConfigError("serve.run_dir", serve.run_dir, "a finished run (it has final_checkpoint/model)")
    spec = spec_for_model_dir(config, model_dir)
    for adapter_id, location in serve.adapters.items():
        if adapter_id == BASE_ADAPTER or adapter_id in spec.adapters:
            raise ConfigError(f"serve.adapters.{adapter_id}", location, "an id not already taken (nor `base`)")
        spec.adapters[adapter_id] = _adapter_dir(adapter_id, location, config)
    if spec.adapters and spec.full_weights:
        raise ConfigError("serve.adapters", list(serve.adapters), "empty when serving a fully fine-tuned run")
    _check_adapter_types(spec.adapters)
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
