"""A study budget as each method's optimizer steps: examples seen, steps, or FLOPs.

A FLOPs budget counts all a method spends to be ready to answer: its training and, for a method that retrieves,
building its index (every passage of the corpus through the document tower, `index_cost.index_flops`); the steps
are what is left after the index, over the method's FLOPs per step. Those need each method's FLOPs per step before
it trains: the trainer's own count (`training_flops`: 4 FLOPs per parameter and token, plus 2 per trainable
parameter and token) over the tokens its batches will hold, estimated from the training questions' prompts (with
each question's gold passage in every one of a RAG method's `rag.k` rows). The trainer's accounted FLOPs after
training are what the report shows.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict

from rag_pet.config import RagPetConfig
from rag_pet.errors import ConfigError
from rag_pet.objectives import objective_of
from rag_pet.study.index_cost import index_flops
from rag_pet.study.spec import BudgetConfig


def examples_per_step(config: RagPetConfig) -> int:
    """Training questions one optimizer step consumes, over all workers."""
    trainer = config.trainer
    return trainer.batch_size * trainer.grad_accum_steps * trainer.num_workers


def steps_for_budget(
    budget: BudgetConfig, config: RagPetConfig, where: str = "study.budget.amount", reads_index: bool = False
) -> int:
    """Optimizer steps of this cell under the budget; refuses a budget below one step (and, for a FLOPs budget of a
    cell that `reads_index`, below building its index plus one step)."""
    if budget.unit == "steps":
        return int(budget.amount)
    if budget.unit == "examples":
        per_step = examples_per_step(config)
        if budget.amount < per_step:
            raise ConfigError(where, budget.amount, f"at least {per_step} examples (one optimizer step of this run)")
        return int(budget.amount // per_step)
    per_step = estimated_step_flops(config)
    index = index_flops(config.index_source) if reads_index else 0.0
    if budget.amount < index + per_step:
        spent = f"building the index ({index:.3g}) and one optimizer step" if index else "one optimizer step"
        raise ConfigError(where, budget.amount, f"at least {_rounded_up(index + per_step)} FLOPs ({spent} of this run)")
    return int((budget.amount - index) // per_step)


def _rounded_up(flops: float) -> str:
    """`flops` to 3 significant digits, rounded up: a budget of the figure printed is enough."""
    scale = 10.0 ** (math.floor(math.log10(flops)) - 2)
    return f"{math.ceil(flops / scale) * scale:.3g}"


def estimated_step_flops(config: RagPetConfig) -> float:
    """Training FLOPs of one optimizer step: the trainer's formula over the estimated tokens of a step."""
    from rag_pet.training.accounting import training_flops

    total, trainable, tokens = _per_example(config)
    return training_flops(total, trainable, 1) * tokens * examples_per_step(config)  # mean tokens: not rounded


_PER_EXAMPLE: dict[str, tuple[int, int, float]] = {}


def _per_example(config: RagPetConfig) -> tuple[int, int, float]:
    """(total, trainable) parameters once adapted and the mean tokens of one training example; estimated once per
    model, adaptation, data and retrieval settings in a process (a study's seeds and re-plans share it)."""
    from rag_pet.models.adaptation import adapt_model, count_parameters
    from rag_pet.models.generator import build_skeleton

    sections = [asdict(config.model), asdict(config.peft), asdict(config.data), asdict(config.rag)]
    key = json.dumps([*sections, asdict(config.corpus), config.objective], sort_keys=True, default=str)
    if key not in _PER_EXAMPLE:
        skeleton, is_seq2seq = build_skeleton(config.model)
        # the method's own freezing or wrapping (`adapt_model`) says what trains: full, frozen, or an adapter
        trainable, total = count_parameters(adapt_model(skeleton, config.peft, is_seq2seq))
        _PER_EXAMPLE[key] = (total, trainable, estimated_example_tokens(config, is_seq2seq))
    return _PER_EXAMPLE[key]


def estimated_example_tokens(config: RagPetConfig, is_seq2seq: bool) -> float:
    """Mean generator tokens of one training example, as the objective's batches will hold them."""
    return objective_of(config).example_tokens(config, is_seq2seq)
