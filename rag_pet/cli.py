"""Glue for the thin `jobs/` entry points: compose and validate the config, run, report user errors in one line."""

from __future__ import annotations

import functools
import inspect
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import hydra
from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import BooleanNode, DictConfig, FloatNode, IntegerNode, StringNode
from omegaconf.errors import ValidationError

from rag_pet.config import RagPetConfig, register_configs, to_config, to_structured
from rag_pet.errors import ConfigError, RagPetError
from rag_pet.evaluation import format_table

T = TypeVar("T")
C = TypeVar("C")
logger = logging.getLogger("rag_pet")

CONFIG_NAME = "config"
NODE_TYPES = {BooleanNode: "a boolean", IntegerNode: "an integer", FloatNode: "a float", StringNode: "a string"}
CHOICE_SWEEPS = (ValueType.CHOICE_SWEEP, ValueType.SIMPLE_CHOICE_SWEEP)


def job_config_dir(task_function: Callable) -> Path:
    """`conf/` beside the `jobs/` folder that holds the job."""
    return Path(inspect.getfile(task_function)).resolve().parents[1] / "conf"


def hydra_job(
    task_function: Callable[[DictConfig], None] | None = None, *, config_name: str = CONFIG_NAME
) -> Callable[[], None]:
    """`hydra.main` over `conf/<config_name>.yaml` beside `jobs/`; a bad override is one `error:` line and exit
    status 2. Used bare (`@hydra_job`) or with another primary config (`@hydra_job(config_name="compare")`)."""
    if task_function is None:
        return functools.partial(hydra_job, config_name=config_name)
    config_dir = job_config_dir(task_function)
    hydra_main = hydra.main(version_base="1.3", config_path=str(config_dir), config_name=config_name)(task_function)

    @functools.wraps(task_function)
    def main(cfg: DictConfig | None = None) -> object:
        """From the command line: Hydra composes and runs. Called with a composed `cfg` (a sweep, a test): the
        task's return value (its metrics)."""
        if cfg is not None:
            return task_function(cfg)
        args = get_args_parser().parse_args()
        own_flags = args.help or args.hydra_help or args.shell_completion or args.experimental_rerun
        if not (own_flags or args.config_path or args.config_dir):
            error = config_error(config_dir, args.config_name or config_name, args.overrides, args.multirun)
            if error is not None:
                _exit_with(error)
        return hydra_main()

    return main


def config_error(config_dir: Path, config_name: str, overrides: list[str], multirun: bool) -> ConfigError | None:
    """Compose as Hydra will; the `ConfigError` for a wrongly typed value or an unknown group option, else None."""
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        try:
            for override_set in _sweep_jobs(overrides) if multirun else [overrides]:
                compose(config_name=config_name, overrides=override_set)
        except ConfigCompositionException as err:
            return as_config_error(err)
        except (OverrideParseException, ValueError):
            return None  # Hydra reports these itself, as it does every other composition error
    return None


def _sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """The fixed overrides of a sweep alone, then with each value of each choice sweep (`-m model=a,b`) in turn."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = [override.input_line for override in parsed if not override.is_sweep_override()]
    sweeps = [override for override in parsed if override.value_type in CHOICE_SWEEPS]
    choices = [f"{sweep.get_key_element()}={value}" for sweep in sweeps for value in sweep.sweep_string_iterator()]
    return [fixed, *([*fixed, choice] for choice in choices)]


def compose_experiment(config_dir: Path, overrides: list[str], field: str) -> RagPetConfig:
    """`conf/config.yaml` with `overrides`, validated, as `python -m jobs.train <overrides>` composes it; a composition
    error names the override to fix as the config `field` it came from (`study.overrides`, `sweep.space.<key>`)."""
    register_configs()
    try:
        if GlobalHydra.instance().is_initialized():
            cfg = compose(config_name=CONFIG_NAME, overrides=overrides)
        else:
            with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
                cfg = compose(config_name=CONFIG_NAME, overrides=overrides)
    except ConfigCompositionException as err:
        raise as_config_error(err) or _override_error(err, overrides, field) from None
    except OverrideParseException as err:
        message = str(err).splitlines()[0]
        raise ConfigError(field, _unparsable(overrides), f"a Hydra override ({message})") from None
    return to_config(cfg)


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


def as_config_error(err: ConfigCompositionException) -> ConfigError | None:
    """The `ConfigError` for an unknown config group option or a value OmegaConf cannot convert, else None."""
    if isinstance(err, MissingConfigException) and err.options and "/" in err.missing_cfg_file:
        group, _, option = err.missing_cfg_file.rpartition("/")
        return ConfigError(group, option, f"one of {', '.join(err.options)}")
    cause = err.__cause__
    if isinstance(cause, ValidationError) and cause.full_key:
        return ConfigError(cause.full_key, cause.value, _allowed(cause))
    return None


def _allowed(err: ValidationError) -> str:
    """What the field accepts: its type, or else the first line of OmegaConf's message."""
    return NODE_TYPES.get(type(err.child_node)) or str(err.msg).strip().splitlines()[0]


def run_job(function: Callable[[C], T], cfg: DictConfig, schema: type[C] = RagPetConfig) -> T:
    """Validate `cfg` as `schema` and call `function`; a `RagPetError` exits with status 2 and its one-line
    message."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return function(to_structured(cfg, schema))
    except RagPetError as err:
        _exit_with(err)


def _exit_with(err: RagPetError) -> NoReturn:
    """Print the user error as one `error:` line on stderr and exit with status 2."""
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)


def format_summary(summary: dict) -> str:
    """What a job prints at the end: the result table and where everything was written."""
    table = format_table(summary["rows"])
    return f"\n{summary['experiment']} on {summary['eval_split']}:\n{table}\nrun directory: {summary['run_dir']}"
