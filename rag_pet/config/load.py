"""Turn a composed Hydra config into the validated, typed `RagPetConfig`, and back into plain data."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rag_pet.config.schema import RagPetConfig
from rag_pet.errors import ConfigError, RagPetError

SCHEMA_NAME = "rag_pet_schema"
T = TypeVar("T")


def register_configs() -> None:
    """Register the typed schema so `conf/config.yaml` can name it first in its defaults list."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=RagPetConfig)


def to_config(cfg: DictConfig | dict[str, Any]) -> RagPetConfig:
    """Resolve and validate a composed experiment config; raise `ConfigError` naming the bad field."""
    return to_structured(cfg, RagPetConfig)


def to_structured(cfg: DictConfig | dict[str, Any], schema: type[T]) -> T:
    """Resolve a composed config and build the `schema` dataclass, validated; a `ConfigError` names the bad field."""
    try:
        container = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
        merged = OmegaConf.merge(OmegaConf.structured(schema), container)
        return OmegaConf.to_object(merged)
    except RagPetError:
        raise
    except OmegaConfBaseException as err:
        if isinstance(err.__cause__, RagPetError):
            raise err.__cause__ from None
        key = getattr(err, "full_key", None) or "config"
        raise ConfigError(key, getattr(err, "value", None), _first_line(err)) from None


def to_dict(config: RagPetConfig) -> dict[str, Any]:
    """Plain nested dict of a config: what crosses into Ray workers and W&B."""
    return dataclasses.asdict(config)


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0]
