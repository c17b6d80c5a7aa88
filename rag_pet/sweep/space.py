"""A sweep's search space: Ray Tune's sampling domains for it, and each sampled point as the Hydra overrides that
compose the trial's experiment, exactly as `python -m jobs.train <overrides>` would."""

from __future__ import annotations

import re
from typing import Any

from ray import tune

from rag_pet.config import dimensions

SIMPLE_STRING = re.compile(r"^[A-Za-z0-9_./+-]+$")


def tune_space(space: dict[str, Any]) -> dict[str, Any]:
    """The Tune param space of a (checked) `sweep.space`, flat by dotted key."""
    return {key: tune_domain(node) for key, node in dimensions(space).items()}


def tune_domain(node: dict[str, Any]):
    """One dimension as a Tune sampling domain (`grid` as `tune.grid_search`)."""
    kind = node["type"]
    if kind == "grid":
        return tune.grid_search(list(node["values"]))
    if kind == "choice":
        return tune.choice(list(node["values"]))
    if kind == "loguniform":
        return tune.loguniform(node["lower"], node["upper"])
    if kind == "randint":
        return tune.randint(node["lower"], node["upper"])
    return tune.uniform(node["lower"], node["upper"])


def corner_points(space: dict[str, Any]) -> list[dict[str, Any]]:
    """One point per extreme value of each dimension (bounds of a range, every listed value), the others at their
    first: what validation composes to refuse a bad value before any trial starts."""
    dims = dimensions(space)
    first = {key: _extremes(node)[0] for key, node in dims.items()}
    return [{**first, key: value} for key, node in dims.items() for value in _extremes(node)]


def _extremes(node: dict[str, Any]) -> list[Any]:
    if "values" in node:
        return list(node["values"])
    upper = node["upper"] - 1 if node["type"] == "randint" else node["upper"]
    return [node["lower"], upper]


def overrides(point: dict[str, Any]) -> list[str]:
    """The Hydra overrides of a sampled point (`{"trainer.lr": 3e-4, "peft": "ia3"}` -> `trainer.lr=0.0003`,
    `peft=ia3`)."""
    return [f"{key}={override_value(value)}" for key, value in point.items()]


def override_value(value: Any) -> str:
    """A value as Hydra's override grammar reads it back unchanged."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    text = str(value)
    return text if SIMPLE_STRING.match(text) else "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
