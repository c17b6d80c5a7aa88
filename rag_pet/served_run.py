"""What `serve.*` asks to serve, resolved once on the driver into an `InferenceSpec`: a finished run (its config and
trained weights) or the configured base model, and extra adapters from other runs. Each run's trained generator is
found through that run's objective (`Objective.generator_dir`). Everything a replica would otherwise fail on late is
checked here: missing weights, adapters trained on another base model or of mixed PEFT types."""

from __future__ import annotations

import json
from pathlib import Path

from rag_pet.config import RagPetConfig, to_config, to_dict
from rag_pet.errors import ConfigError
from rag_pet.inference.spec import (
    ADAPTER_CONFIG,
    BASE_ADAPTER,
    FINAL_MODEL,
    InferenceSpec,
    generator_weights,
    spec_for_model_dir,
)
from rag_pet.objectives import objective_of


def run_spec(config: RagPetConfig, model_dir: Path | None) -> InferenceSpec:
    """Serve `config` with the trained weights its run saved in `model_dir` (None: the configured base model)."""
    generator_dir = objective_of(config).generator_dir(config, Path(model_dir)) if model_dir is not None else None
    return spec_for_model_dir(config, model_dir, generator_dir)


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
    spec = run_spec(config, model_dir)
    for adapter_id, location in serve.adapters.items():
        if adapter_id == BASE_ADAPTER or adapter_id in spec.adapters:
            raise ConfigError(f"serve.adapters.{adapter_id}", location, "an id not already taken (nor `base`)")
        spec.adapters[adapter_id] = _adapter_dir(adapter_id, location, config)
    if spec.adapters and spec.full_weights:
        raise ConfigError("serve.adapters", list(serve.adapters), "empty when serving a fully fine-tuned run")
    _check_adapter_types(spec.adapters)
    return spec


def _run_config(run_dir: Path, current: RagPetConfig) -> RagPetConfig:
    """The config a finished run was trained with, with the `serve` section of the current command line."""
    path = run_dir / "config.json"
    if not path.is_file():
        raise ConfigError("serve.run_dir", str(run_dir), "a training run directory (it holds config.json)")
    saved = json.loads(path.read_text())
    saved["serve"] = to_dict(current)["serve"]
    return to_config(saved)


def _adapter_dir(adapter_id: str, location: str, base: RagPetConfig) -> str:
    """The adapter directory `serve.adapters.<id>` names (a run directory or an adapter folder), checked."""
    path = Path(location).expanduser().resolve()
    name = f"serve.adapters.{adapter_id}"
    if (path / ADAPTER_CONFIG).is_file():
        return str(path)
    if not (path / "config.json").is_file():
        raise ConfigError(name, location, "a training run directory or a folder holding adapter_config.json")
    saved = json.loads((path / "config.json").read_text())
    if saved.get("model") != to_dict(base)["model"]:
        raise ConfigError(name, location, f"a run trained on the served base model ({base.model.source})")
    run = to_config(saved)
    adapter, _ = generator_weights(run, objective_of(run).generator_dir(run, path / FINAL_MODEL))
    if adapter is None or not (Path(adapter) / ADAPTER_CONFIG).is_file():
        raise ConfigError(name, location, "a finished PEFT run (its final_checkpoint/model holds an adapter)")
    return adapter


def _check_adapter_types(adapters: dict[str, str]) -> None:
    """One PEFT type for all served adapters: peft keeps several adapters of one kind on one base model."""
    kinds = {i: json.loads((Path(d) / ADAPTER_CONFIG).read_text())["peft_type"] for i, d in adapters.items()}
    if len(set(kinds.values())) > 1:
        listing = ", ".join(f"{i}={k}" for i, k in sorted(kinds.items()))
        raise ConfigError("serve.adapters", listing, "adapters of one PEFT type (serve the others separately)")
