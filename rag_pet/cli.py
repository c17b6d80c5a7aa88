"""Glue for the thin `jobs/` entry points: compose and validate the config, run, report user errors in one line.

This module and the jobs import torch, transformers and Ray only where a job runs, so a bad override is answered
before they load (a second, not the six that importing them takes on 2 cores)."""

from __future__ import annotations

import argparse
import functools
import inspect
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import hydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType
from hydra.errors import OverrideParseException
from omegaconf import DictConfig

from rag_pet.config import RagPetConfig, to_structured
from rag_pet.config.compose import CONFIG_NAME, compose
from rag_pet.console import VERBOSE_ENV, error_line, is_quiet, job_log_file, quiet_terminal, take_verbose_flag
from rag_pet.disk import out_of_disk
from rag_pet.errors import ConfigError, RagPetError
from rag_pet.experiment_config import experiment_config

T = TypeVar("T")
C = TypeVar("C")
logger = logging.getLogger("rag_pet")

CHOICE_SWEEPS = (ValueType.CHOICE_SWEEP, ValueType.SIMPLE_CHOICE_SWEEP)
INTERRUPTED = (
    "interrupted: the same command goes on from what finished (checkpoints, finished study cells and index versions"
    " are kept)"
)


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

    @functools.wraps(task_function)
    def quietly(cfg: DictConfig) -> object:
        """The task with its output in its log file and only its own lines on the terminal (`rag_pet.console`)."""
        log_file = job_log_file()
        if log_file is None or os.environ.get(VERBOSE_ENV, "") not in ("", "0"):
            return task_function(cfg)
        with quiet_terminal(log_file):
            return task_function(cfg)

    hydra_main = hydra.main(version_base="1.3", config_path=str(config_dir), config_name=config_name)(quietly)

    @functools.wraps(task_function)
    def main(cfg: DictConfig | None = None) -> object:
        """From the command line: Hydra composes and runs. Called with a composed `cfg` (a sweep, a test): the
        task's return value (its metrics)."""
        if cfg is not None:
            return task_function(cfg)
        if take_verbose_flag(sys.argv):
            os.environ[VERBOSE_ENV] = "1"
        args = _command_line()
        own_flags = args.help or args.hydra_help or args.shell_completion or args.experimental_rerun
        if not (own_flags or args.config_path or args.config_dir):
            error = config_error(config_dir, args.config_name or config_name, args.overrides, args.multirun)
            if error is not None:
                _exit_with(error)
        try:
            return hydra_main()
        except KeyboardInterrupt:  # Ctrl-C is the user's, not a bug: one line, no traceback
            error_line(INTERRUPTED)
            sys.exit(130)

    return main


def _command_line() -> argparse.Namespace:
    """The flags of Hydra's documented command line that decide whether to check the overrides first (Hydra
    parses the command line again itself; unknown flags are left to it)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("overrides", nargs="*")
    for flag in ("--help", "--hydra-help", "--experimental-rerun", "--multirun", "--shell-completion"):
        short = {"--help": "-h", "--multirun": "-m", "--shell-completion": "-sc"}.get(flag)
        names = (flag, short) if short else (flag,)
        parser.add_argument(*names, action="store_true" if flag != "--experimental-rerun" else "store")
    for flag, short in (("--config-path", "-cp"), ("--config-name", "-cn"), ("--config-dir", "-cd")):
        parser.add_argument(flag, short)
    return parser.parse_known_args()[0]


def config_error(config_dir: Path, config_name: str, overrides: list[str], multirun: bool) -> ConfigError | None:
    """Compose as Hydra will; the `ConfigError` for a wrongly typed value, an unknown group option or an unknown
    key, else None (Hydra reports the rest itself)."""
    try:
        for override_set in _sweep_jobs(overrides) if multirun else [overrides]:
            compose(config_dir, override_set, config_name)
    except ConfigError as err:
        return None if err.field == "overrides" else err
    except (OverrideParseException, ValueError):
        return None
    return None


def _sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """The fixed overrides of a sweep alone, then with each value of each choice sweep (`-m model=a,b`) in turn."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = [override.input_line for override in parsed if not override.is_sweep_override()]
    sweeps = [override for override in parsed if override.value_type in CHOICE_SWEEPS]
    choices = [f"{sweep.get_key_element()}={value}" for sweep in sweeps for value in sweep.sweep_string_iterator()]
    return [fixed, *([*fixed, choice] for choice in choices)]


def run_job(function: Callable[[C], T], cfg: DictConfig, schema: type[C] = RagPetConfig) -> T:
    """Validate `cfg` as `schema` (an experiment's config also by its objective, `experiment_config`) and call
    `function`; a `RagPetError`, or running out of disk space anywhere in the job, exits with status 2 and its
    one-line message."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return function(experiment_config(cfg) if schema is RagPetConfig else to_structured(cfg, schema))
    except RagPetError as err:
        _exit_with(err)
    except Exception as err:
        full = out_of_disk(err)
        if full is None:
            raise
        _exit_with(full)


def exit_if_failed(failed: int, total: int, what: str) -> None:
    """After a job has written and printed its results: exit with status 1 and one line when `failed` of its
    `total` parts (study cells, sweep trials, answered questions) failed, so a script or CI sees it."""
    if failed:
        error_line(f"error: {failed} of {total} {what} failed (see above and the report)")
        sys.exit(1)


def _exit_with(err: RagPetError) -> NoReturn:
    """Print the user error as one `error:` line on stderr, add it to the job's log files (`<run_dir>/<job>.log`)
    and exit with status 2."""
    line = f"error: {err}"
    error_line(line)
    if not is_quiet():  # quiet, stderr is the log file already
        _log_to_files(line)
    sys.exit(2)


def _log_to_files(line: str) -> None:
    """`line` in the log files the job writes (Hydra's file handler), not again on the console; best effort: a
    full disk may refuse it too, and must not turn the one line into a logging traceback."""
    record = logging.LogRecord("rag_pet", logging.ERROR, __file__, 0, line, None, None)
    raising, logging.raiseExceptions = logging.raiseExceptions, False
    try:
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.FileHandler):
                handler.handle(record)  # emit flushes; a failure goes to handleError, silenced above
    finally:
        logging.raiseExceptions = raising


def format_summary(summary: dict) -> str:
    """What a job prints at the end: the result table and where everything was written."""
    from rag_pet.evaluation import format_table  # here, not above: see the module docstring

    table = format_table(summary["rows"])
    return f"\n{summary['experiment']} on {summary['eval_split']}:\n{table}\nrun directory: {summary['run_dir']}"
