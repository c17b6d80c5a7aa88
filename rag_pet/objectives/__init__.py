"""The objectives a run trains, and the study methods built on them, found by name.

Each objective is one module of this package, named after it (`closed_book`, `rag`, `retriever`, `raft`), whose
`OBJECTIVE` declares everything the platform asks of it (`Objective`). The platform asks this registry and never
compares objective names, so adding an objective is adding a module and its `conf/experiment` file (README,
"Workflow"). An objective's module is imported by name when first asked for, as transformers' auto classes import
a model's module. The registry and the objectives sit at the top of the package, beside the experiment they wire
together (README, "Layers"): the layers below never ask it; the experiment, study and sweep pass an objective down.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import TYPE_CHECKING

from rag_pet.errors import ConfigError
from rag_pet.objectives.base import Method, Objective

if TYPE_CHECKING:
    from rag_pet.config import RagPetConfig

NOT_OBJECTIVES = frozenset({"base", "generator"})  # shared code of the objective modules

__all__ = ["Method", "Objective", "objective_named", "objective_names", "objective_of", "study_method", "study_methods"]


@cache
def objective_names() -> tuple[str, ...]:
    """Every objective a config may name, in listing order (`Objective.order`, then name)."""
    names = [found.name for found in pkgutil.iter_modules(__path__) if found.name not in NOT_OBJECTIVES]
    return tuple(sorted(names, key=lambda name: (_module(name).OBJECTIVE.order, name)))


def _module(name: str):
    return importlib.import_module(f"{__name__}.{name}")


def objective_named(name: str) -> Objective:
    """The objective called `name`; a ConfigError on `objective` listing them otherwise."""
    if name not in objective_names():
        raise ConfigError("objective", name, f"one of {', '.join(objective_names())}")
    return _module(name).OBJECTIVE


def objective_of(config: RagPetConfig) -> Objective:
    """The objective `config.objective` names."""
    return objective_named(config.objective)


def study_methods() -> dict[str, Method]:
    """Every method a study may list, by name, in the objectives' order."""
    return {method.name: method for name in objective_names() for method in objective_named(name).study_methods()}


def study_method(name: str) -> Method:
    """The study method called `name`; a ConfigError on `study.methods` listing them otherwise."""
    methods = study_methods()
    if name not in methods:
        raise ConfigError("study.methods", name, f"one of {', '.join(methods)}")
    return methods[name]
