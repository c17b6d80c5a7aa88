"""Compose a config from `conf/` with overrides as the jobs do, with Hydra's composition errors turned into one-line
`ConfigError`s: the one way every job, study cell and sweep trial gets its config."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import BooleanNode, DictConfig, FloatNode, IntegerNode, OmegaConf, StringNode
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from rag_pet.config.load import register_configs
from rag_pet.errors import ConfigError

CONFIG_NAME = "config"
NODE_TYPES = {BooleanNode: "a boolean", IntegerNode: "an integer", FloatNode: "a float", StringNode: "a string"}


def compose(
    config_dir: Path,
    overrides: list[str],
    config_name: str = CONFIG_NAME,
    field: str = "overrides",
    hydra_node: bool = False,
) -> DictConfig:
    """`conf/<config_name>.yaml` with `overrides`, composed as `python -m jobs.<job> <overrides>` composes it
    (`hydra_node`: with Hydra's own `hydra:` node, its run directory and job settings, as the job sees it).

    A wrongly typed value, an unknown group option or an unknown key raises the `ConfigError` for that field; any
    other override Hydra cannot apply or parse is named as the config `field` it came from (`study.overrides`,
    `sweep.space`)."""
    register_configs()
    try:
        if GlobalHydra.instance().is_initialized():
            return hydra_compose(config_name=config_name, overrides=overrides, return_hydra_config=hydra_node)
        with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=overrides, return_hydra_config=hydra_node)
    except ConfigCompositionException as err:
        found = as_config_error(err, config_dir, config_name, overrides, field)
        raise found or _override_error(err, overrides, field) from None
    except OverrideParseException as err:
        message = str(err).splitlines()[0]
        raise ConfigError(field, _unparsable(overrides), f"a Hydra override ({message})") from None


def as_config_error(
    err: ConfigCompositionException,
    config_dir: Path,
    config_name: str,
    overrides: list[str],
    field: str = "overrides",
) -> ConfigError | None:
    """The `ConfigError` for an unknown config group option, a value OmegaConf cannot convert, or a key the config
    does not have (with the closest key it has; named as the override in `field` when that is not the command
    line's), else None."""
    if isinstance(err, MissingConfigException) and err.options and "/" in err.missing_cfg_file:
        group, _, option = err.missing_cfg_file.rpartition("/")
        return ConfigError(group, option, f"one of {', '.join(err.options)}")
    cause = err.__cause__
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and cause.full_key:
        found = _unknown_key(cause.full_key, _value_of(cause.full_key, overrides), config_dir, config_name)
        if field == "overrides":
            return found
        return ConfigError(field, f"{found.field}={found.value}", found.allowed)
    if isinstance(cause, ValidationError) and cause.full_key:
        return ConfigError(cause.full_key, cause.value, _allowed(cause))
    return None


def _value_of(key: str, overrides: list[str]) -> str | None:
    """The value text of the override that sets `key`."""
    for override in overrides:
        name, _, value = override.partition("=")
        if name.lstrip("+~") == key:
            return value
    return None


def _unknown_key(key: str, value: str | None, config_dir: Path, config_name: str) -> ConfigError:
    """A key the config has not: the closest key it has, preferring one of the same name in another section."""
    known = _keys(OmegaConf.to_container(compose(config_dir, [], config_name), resolve=False))
    name = key.rpartition(".")[2]
    same_name = [k for k in known if k.rpartition(".")[2] == name]
    closest = same_name[:1] or difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean {closest[0]}?" if closest else ""
    return ConfigError(key, value, f"a key the config has (`--cfg job` lists them){hint}")


def _keys(node: object, prefix: str = "") -> list[str]:
    """Every leaf key of a nested config, dotted."""
    if isinstance(node, dict) and node:
        return [key for name, child in node.items() for key in _keys(child, f"{prefix}.{name}" if prefix else name)]
    return [prefix] if prefix else []


def _allowed(err: ValidationError) -> str:
    """What the field accepts: its type, or else the first line of OmegaConf's message."""
    return NODE_TYPES.get(type(err.child_node)) or str(err.msg).strip().splitlines()[0]


def _unparsable(overrides: list[str]) -> str | list[str]:
    """The first override Hydra cannot parse on its own (else all of them)."""
    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except OverrideParseException:
            return override
    return overrides


def _override_error(err: Exception, overrides: list[str], field: str) -> ConfigError:
    """The error naming the override Hydra could not apply (the first one its message names, else all of them)."""
    message = str(err).strip().splitlines()[0]
    named = re.search(r"override '([^']+)'", message)
    culprit = next((o for o in overrides if named and o.lstrip("+~").startswith(named.group(1))), None)
    return ConfigError(field, culprit or overrides, f"an override of a key the config has ({message})")
