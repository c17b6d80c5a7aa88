"""What the platform asks of a training objective (`Objective`) and what a study method is (`Method`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rag_pet.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

    from rag_pet.config import RagPetConfig
    from rag_pet.models import Generator
    from rag_pet.training.context import TrainContext
    from rag_pet.training.task import TrainTask


@dataclass(frozen=True)
class Method:
    """A study method: its experiment overrides, whether it trains, and whether it answers from retrieved passages."""

    name: str
    overrides: tuple[str, ...]
    trains: bool
    retrieves: bool


class Objective:
    """One training objective: its config checks, how its task and model are built, how it is evaluated and
    labelled, what it reports, how its trained generator is found, and the study methods built on it.

    Subclasses set `name` (their module's name) and implement the methods that raise `NotImplementedError`;
    `GeneratorObjective` (rag_pet/objectives/generator.py) implements most of them for objectives that train a
    generator answering questions."""

    name: ClassVar[str]
    order: ClassVar[int] = 100  # place in listings (error messages, `study_methods`)
    retrieves: ClassVar[bool] = False  # answers from retrieved passages: needs the corpus's index
    # A dataclass of the objective's own settings (`objective_options` in the config), checking its values.
    options_type: ClassVar[type | None] = None

    def options(self, config: RagPetConfig) -> Any:
        """`config.objective_options` as an `options_type`; a ConfigError names a key this objective does not
        have."""
        given = dict(config.objective_options)
        allowed = sorted(field.name for field in fields(self.options_type)) if self.options_type else []
        for key in sorted(given):
            if key not in allowed:
                have = ", ".join(allowed) if allowed else "none"
                raise ConfigError(f"objective_options.{key}", given[key], f"an option of objective={self.name}: {have}")
        return self.options_type(**given) if self.options_type else None

    def check(self, config: RagPetConfig) -> None:
        """Raise a ConfigError for settings this objective cannot run with (called where a job's config is made,
        `rag_pet.experiment_config`)."""

    def trains(self, config: RagPetConfig) -> bool:
        """Whether a run of `config` trains anything (else it is evaluated only)."""
        raise NotImplementedError

    def label(self, config: RagPetConfig, trained: bool) -> str:
        """The results-table name of the configured model, before (`trained=False`) or after training."""
        raise NotImplementedError

    def study_methods(self) -> list[Method]:
        """The study methods that run this objective."""
        return []

    def preflight(self, config: RagPetConfig) -> None:
        """Check (and prepare once, before any worker starts) what training needs: data, weights, index."""
        raise NotImplementedError

    def reserved_cpus(self, config: RagPetConfig) -> float:
        """CPUs the run's own Ray actors take besides the training workers."""
        return 0.0

    def build_task(self, config: RagPetConfig, ctx: TrainContext) -> TrainTask:
        """The training task of one worker: the module that trains and its batches."""
        raise NotImplementedError

    def build_model(self, config: RagPetConfig) -> nn.Module:
        """The module that trains, freshly built (the shape a DeepSpeed checkpoint is exported into)."""
        raise NotImplementedError

    def example_tokens(self, config: RagPetConfig, is_seq2seq: bool) -> float:
        """Mean generator tokens of one training example (a FLOPs budget's step estimate)."""
        raise NotImplementedError

    def generator_dir(self, config: RagPetConfig, model_dir: Path) -> Path | None:
        """Where a finished run's trained generator weights are under its `model_dir`; None when it has none (the
        base generator answers)."""
        return None

    def answer_k(self, config: RagPetConfig) -> int | None:
        """Passages each answer reads (None: closed-book)."""
        return None

    def evaluate(
        self, config: RagPetConfig, label: str, model_dir: Path | None, base: Callable[[], Generator]
    ) -> dict[str, float]:
        """The configured model's metrics (`model_dir`: the trained one's weights; `base()`: the base generator,
        built once per run), its evaluation files under `<run_dir>/eval/<label>`."""
        raise NotImplementedError

    def forgetting_baseline(self, config: RagPetConfig, base: Callable[[], Generator]) -> float | None:
        """The base generator's loss on `eval.forgetting_texts`, which training's forgetting is measured from; None
        when not asked for or meaningless (nothing generates)."""
        return None

    def evaluation_metrics(self, config: RagPetConfig) -> tuple[str, ...]:
        """The metric names `evaluate` reports."""
        raise NotImplementedError
