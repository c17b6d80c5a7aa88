"""What a study's tuning sweeps: its settings (`study.tune`, `TuneConfig`) and each trained method's search space,
around the learning rate the method trains at, as the sweep config `jobs.sweep` runs, with errors naming the
study's fields."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from rag_pet.config.sweep import SchedulerConfig, SweepConfig, dimensions
from rag_pet.errors import ConfigError

TUNE_FIELD = "study.tune"
LR_KEY = "trainer.lr"


@dataclass
class TuneConfig:
    """Hyperparameters chosen per method before the main cells (`enabled`): a Ray Tune sweep (`search`,
    `scheduler` as in conf/sweep/) over each trained method's first-seed main cell, every trial at its budget,
    trained without the `dev_fraction` of the training articles' questions held out as the `dev` split and scored
    there by `metric` (`mode`); the method's cells then train with the best trial's values. `space` is a sweep
    space (conf/sweep/ format). Unless it sets `trainer.lr`, the learning rate takes `lr_points` log-spaced values
    from the method's own rate times `lr_factor[0]` to times `lr_factor[1]`: a grid, so every method tries the same
    multiples of its own rate (5 points over [0.1, 10] include the rate itself) and the report can say when the
    best lies at an end; `lr_points: null` draws it log-uniform instead. Each learning rate is tried with
    `num_samples` draws of the rest of `space`."""

    enabled: bool = False
    dev_fraction: float = 0.1
    lr_factor: list[float] | None = field(default_factory=lambda: [0.1, 10.0])
    lr_points: int | None = 5
    space: dict[str, Any] = field(default_factory=dict)
    num_samples: int = 1
    search: str = "random"
    scheduler: dict[str, Any] = field(default_factory=lambda: {"type": "fifo"})
    metric: str = "answer_nll"
    mode: str = "min"

    def check(self) -> None:
        if not 0.0 < self.dev_fraction < 1.0:
            raise ConfigError("study.tune.dev_fraction", self.dev_fraction, "a fraction in (0, 1)")
        tune_sweep(self, "check", 1.0, 0)


@contextmanager
def as_tune_fields() -> Iterator[None]:
    """Re-raise a sweep's `ConfigError` (`sweep.space.trainer.lr`) under the study field that set it
    (`study.tune.space.trainer.lr`)."""
    try:
        yield
    except ConfigError as err:
        if not err.field.startswith("sweep."):
            raise
        raise ConfigError(f"{TUNE_FIELD}.{err.field.removeprefix('sweep.')}", err.value, err.allowed) from None


def method_space(space: dict[str, Any], lr_factor: list[float] | None, lr: float, points: int | None) -> dict:
    """The space of a method that trains at `lr`: `space`, and unless it sets `trainer.lr` itself, learning rates
    from `lr * lr_factor[0]` to `lr * lr_factor[1]`: `points` log-spaced values (3 significant digits) as a grid,
    or log-uniform when `points` is None."""
    if lr_factor is None or LR_KEY in dimensions(space):
        return space
    found = copy.deepcopy(space)
    lower, upper = lr * lr_factor[0], lr * lr_factor[1]
    if points is None:
        node: dict[str, Any] = {"type": "loguniform", "lower": lower, "upper": upper}
    else:
        node = {"type": "grid", "values": [float(f"{value:.3g}") for value in np.geomspace(lower, upper, points)]}
    found.setdefault("trainer", {})["lr"] = node
    return found


def tune_sweep(tune: TuneConfig, name: str, lr: float, seed: int) -> SweepConfig:
    """The sweep that tunes a method training at `lr` (`seed`: where random search starts), checked; a bad value
    raises the `ConfigError` of its `study.tune` field."""
    with as_tune_fields():
        _check_lr_factor(tune)
        space = method_space(tune.space, tune.lr_factor, lr, tune.lr_points)
        return SweepConfig(
            name=name,
            metric=tune.metric,
            mode=tune.mode,
            space=space,
            num_samples=tune.num_samples,
            search=tune.search,
            seed=seed,
            scheduler=_scheduler(tune.scheduler),
        )


def _check_lr_factor(tune: TuneConfig) -> None:
    factor = tune.lr_factor
    if factor is None:
        return
    numbers = len(factor) == 2 and all(isinstance(f, (int, float)) and not isinstance(f, bool) for f in factor)
    if not numbers or not 0 < factor[0] < factor[1]:
        raise ConfigError(f"{TUNE_FIELD}.lr_factor", factor, "[lower, upper] with 0 < lower < upper, e.g. [0.1, 10]")
    if LR_KEY in dimensions(tune.space):
        return
    if tune.lr_points is not None and tune.lr_points < 2:
        raise ConfigError(f"{TUNE_FIELD}.lr_points", tune.lr_points, "at least 2 (both ends of lr_factor), or null")
    if tune.lr_points is None and tune.search == "grid":
        raise ConfigError(f"{TUNE_FIELD}.lr_points", None, "a number of rates under study.tune.search=grid, e.g. 5")
    if tune.lr_points is not None and tune.search == "optuna":
        raise ConfigError(
            f"{TUNE_FIELD}.lr_points",
            tune.lr_points,
            "null under study.tune.search=optuna (Optuna samples the rate log-uniform; a grid is Tune's own search)",
        )


def _scheduler(settings: dict[str, Any]) -> SchedulerConfig:
    known = [f.name for f in fields(SchedulerConfig)]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ConfigError(f"{TUNE_FIELD}.scheduler.{unknown[0]}", settings[unknown[0]], f"a key of {', '.join(known)}")
    return SchedulerConfig(**settings)
