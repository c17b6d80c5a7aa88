"""The data-needs cells (`study.budgets`, planned by `rag_pet.study.cells`): their ids, the sizes a study may ask
for, and their share of the budget.

A curve cell is its main cell with less data: the same method, seed, overrides and starting weights (after the same
knowledge cell under `knowledge_matched`), and the budget scaled by n / `train_examples`, so it makes the same
passes over its questions as the main cell makes over its own.
"""

from __future__ import annotations

import math

from rag_pet.config import RagPetConfig
from rag_pet.errors import ConfigError
from rag_pet.study.budget import estimated_step_flops, examples_per_step
from rag_pet.study.index_cost import index_flops
from rag_pet.study.spec import BudgetConfig

CURVE = "curve"


def curve_id(main: str, size: int) -> str:
    """`lora-seed0.n32`: the main cell's id and the training-set size."""
    return f"{main}.n{size}"


def check_size(size: int, config: RagPetConfig, method: str) -> None:
    """Refuse a size the training split cannot fill, or below one batch of every worker."""
    from rag_pet.data.datasets import load_qa_split

    data, trainer = config.data, config.trainer
    available = len(load_qa_split(data, data.train_split))
    if size > available:
        raise ConfigError("study.budgets", size, f"at most {available}, the questions of the {data.train_split} split")
    if size < trainer.batch_size * trainer.num_workers:
        raise ConfigError(
            "study.budgets",
            size,
            f"at least one batch of every worker ({trainer.batch_size} x {trainer.num_workers}) for {method}",
        )


def curve_steps(budget: BudgetConfig, config: RagPetConfig, share: float, reads_index: bool) -> int:
    """The optimizer steps of `budget` scaled by `share` (a curve size over `study.train_examples`), at least one;
    a FLOPs budget scales what is left after building the index, which a retrieving cell pays in full at every
    size."""
    if budget.unit == "steps":
        amount, per_step = budget.amount, 1.0
    elif budget.unit == "examples":
        amount, per_step = budget.amount, examples_per_step(config)
    else:
        amount = budget.amount - (index_flops(config.index_source) if reads_index else 0.0)
        per_step = estimated_step_flops(config)
    return max(1, math.floor(amount * share / per_step))
