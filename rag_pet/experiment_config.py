"""The config of one experiment as a job runs it: composed from `conf/` (`rag_pet.config.compose`), validated field
by field (`rag_pet.config`), then checked by its objective (its `objective_options` and the settings it cannot run
with). Every job, study cell and sweep trial gets its config here; a config built in Python gets its objective's
checks from `experiment_config`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rag_pet.config import RagPetConfig, to_config
from rag_pet.config.compose import CONFIG_NAME, compose
from rag_pet.objectives import objective_named


def experiment_config(cfg: DictConfig | dict[str, Any] | RagPetConfig) -> RagPetConfig:
    """The typed experiment config of a composed (or plain) config, checked by its objective; a `ConfigError`
    names the bad field."""
    config = cfg if isinstance(cfg, RagPetConfig) else to_config(cfg)
    objective = objective_named(config.objective)
    objective.options(config)
    objective.check(config)
    return config


def compose_experiment(config_dir: Path, overrides: list[str], field: str = "overrides") -> RagPetConfig:
    """`conf/config.yaml` with `overrides` (an override Hydra cannot apply is named as `field`), as
    `experiment_config`."""
    return experiment_config(compose(config_dir, overrides, CONFIG_NAME, field))
