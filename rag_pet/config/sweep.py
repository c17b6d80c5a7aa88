"""What a hyperparameter sweep is (`conf/sweep/*.yaml`): a search space over experiment keys, the metric to
optimise, the search algorithm, the early-stopping scheduler and how many trials run at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rag_pet.config.checks import one_of, positive
from rag_pet.errors import ConfigError

SEARCHERS = ("random", "grid", "optuna")
SCHEDULERS = ("asha", "fifo")
MODES = ("min", "max")
RANGE_TYPES = ("uniform", "loguniform", "randint")
LIST_TYPES = ("choice", "grid")
SPACE_TYPES = RANGE_TYPES + LIST_TYPES


@dataclass
class SchedulerConfig:
    """Early stopping. `asha` (asynchronous successive halving) compares running trials at each report of `metric`
    (default: the sweep's metric) and stops the worse ones after `grace_period` reports; `fifo` runs every trial to
    the end. ASHA needs a metric reported while training (`loss`, ...), since it decides before training ends."""

    type: str = "asha"
    metric: str | None = None
    mode: str | None = None
    grace_period: int = 1
    reduction_factor: float = 2.0

    def __post_init__(self) -> None:
        one_of("sweep.scheduler.type", self.type, SCHEDULERS)
        if self.mode is not None:
            one_of("sweep.scheduler.mode", self.mode, MODES)
        positive("sweep.scheduler.grace_period", self.grace_period)
        if self.reduction_factor <= 1:
            raise ConfigError("sweep.scheduler.reduction_factor", self.reduction_factor, "a number > 1")


@dataclass
class SweepConfig:
    """A Ray Tune sweep over an experiment: `num_samples` trials drawn from `space` by `search`, each an ordinary
    training run; the best by `metric` (`mode`) is written out as an experiment yaml.

    `space` mirrors the experiment config: a leaf is a dimension `{type: loguniform|uniform|randint, lower, upper}`
    or `{type: choice|grid, values: [...]}`; a top-level key may name a config group (`peft: {type: choice, values:
    [lora, ia3]}`). `max_concurrent_trials` null runs as many trials at once as the cluster's CPUs (GPUs) hold."""

    name: str = "sweep"
    metric: str = "f1"
    mode: str = "max"
    space: dict[str, Any] = field(default_factory=dict)
    num_samples: int = 4
    search: str = "random"
    seed: int = 0
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    max_concurrent_trials: int | None = None
    max_failures: int = 0

    def __post_init__(self) -> None:
        one_of("sweep.mode", self.mode, MODES)
        one_of("sweep.search", self.search, SEARCHERS)
        positive("sweep.num_samples", self.num_samples)
        positive("sweep.max_failures", self.max_failures, allow_zero=True)
        if self.max_concurrent_trials is not None:
            positive("sweep.max_concurrent_trials", self.max_concurrent_trials)
        if not self.space:
            raise ConfigError("sweep.space", {}, "a dimension or more, e.g. {trainer: {lr: {type: loguniform, ...}}}")
        dimensions(self.space)
        if self.scheduler.metric not in (None, self.metric) and self.scheduler.mode is None:
            raise ConfigError("sweep.scheduler.mode", None, f"min or max: which way ASHA ranks {self.scheduler.metric}")

    @property
    def early_stop_metric(self) -> str:
        """The metric ASHA compares trials on."""
        return self.scheduler.metric or self.metric

    @property
    def early_stop_mode(self) -> str:
        return self.scheduler.mode or self.mode


def dimensions(space: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """The dimensions of a search space by dotted experiment key, each checked: a known `type` with its bounds
    (`lower` < `upper`, both > 0 for `loguniform`) or its non-empty `values`."""
    found: dict[str, dict[str, Any]] = {}
    for key, node in space.items():
        path = f"{prefix}{key}"
        if not isinstance(node, dict):
            raise ConfigError(f"sweep.space.{path}", node, "a dimension {type: ..., ...} or a section of them")
        if "type" not in node:
            found.update(dimensions(node, f"{path}."))
            continue
        found[path] = _checked_dimension(f"sweep.space.{path}", node)
    return found


def _checked_dimension(where: str, node: dict[str, Any]) -> dict[str, Any]:
    one_of(f"{where}.type", node["type"], SPACE_TYPES)
    if node["type"] in LIST_TYPES:
        extra = set(node) - {"type", "values"}
        values = node.get("values")
        if extra or not isinstance(values, list) or not values:
            raise ConfigError(where, node, f"{{type: {node['type']}, values: [a non-empty list]}}")
        return node
    extra = set(node) - {"type", "lower", "upper"}
    lower, upper = node.get("lower"), node.get("upper")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lower, upper))
    if extra or not numbers or not lower < upper:
        raise ConfigError(where, node, f"{{type: {node['type']}, lower: <number>, upper: <larger number>}}")
    if node["type"] == "loguniform" and lower <= 0:
        raise ConfigError(f"{where}.lower", lower, "a number > 0 (a log-uniform range)")
    if node["type"] == "randint" and not (isinstance(lower, int) and isinstance(upper, int)):
        raise ConfigError(where, node, "whole-number bounds (randint draws from lower to upper - 1)")
    return node
