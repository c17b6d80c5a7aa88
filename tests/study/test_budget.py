"""A study's budget: the same examples (or steps) for every trained method, each method's own whole steps under a
FLOPs budget, and the FLOPs per step estimated before training equal to what the trainer then counts."""

from dataclasses import replace

import pytest

import rag_pet.study.budget as budget_module
from rag_pet.models.generator import build_tokenizer
from rag_pet.study import BudgetConfig
from rag_pet.study.budget import estimated_example_tokens, estimated_step_flops
from rag_pet.study.cells import plan_cells
from rag_pet.study.index_cost import index_flops
from rag_pet.study.spec import FreshnessConfig
from tests.conftest import CONF_DIR, train
from tests.study.test_study import tiny_study

METHODS = ["zero_shot", "full", "lora", "ia3", "prompt", "rag", "rag+lora"]
TRAINED = {"full", "lora", "ia3", "prompt", "rag+lora"}


def plan(tmp_path, budget: BudgetConfig, *overrides: str, **fields) -> dict:
    """The study's cells by id (composed and validated; nothing runs)."""
    compare = tiny_study(
        tmp_path, *overrides, budget=budget, seeds=[0], methods=fields.pop("methods", METHODS), **fields
    )
    return {cell.id: cell for cell in plan_cells(compare.study, tmp_path / "study", CONF_DIR, compare.tracking)}


def trained_configs(cells: dict) -> dict:
    return {cell.method.name: cell.config for cell in cells.values() if cell.method.trains}


def test_an_examples_budget_gives_every_method_the_same_examples_within_one_step(tmp_path):
    # lora steps on 2 workers and ia3 accumulates 2 micro-batches: 8 examples a step; the others 4
    geometry = {"lora": ["trainer.num_workers=2"], "ia3": ["trainer.grad_accum_steps=2"]}
    cells = plan(tmp_path, BudgetConfig("examples", 42), method_overrides=geometry)  # 42: no multiple of 4 or 8
    configs = trained_configs(cells)
    assert set(configs) == TRAINED

    per_step = {
        name: c.trainer.batch_size * c.trainer.grad_accum_steps * c.trainer.num_workers for name, c in configs.items()
    }
    assert per_step == {"full": 4, "lora": 8, "ia3": 8, "prompt": 4, "rag+lora": 4}
    for name, config in configs.items():
        seen = config.trainer.max_steps * per_step[name]
        assert 42 - per_step[name] < seen <= 42, name  # the whole steps that fit: never over, under by < one step
    steps = {name: config.trainer.max_steps for name, config in configs.items()}
    assert steps == {"full": 10, "lora": 5, "ia3": 5, "prompt": 10, "rag+lora": 10}
    for untrained in ("zero_shot", "rag"):  # nothing to budget
        assert not any(o.startswith("trainer.max_steps=") for o in cells[untrained].overrides)


def test_a_steps_budget_gives_every_trained_method_the_same_steps(tmp_path):
    geometry = {"lora": ["trainer.num_workers=2"], "ia3": ["trainer.grad_accum_steps=2"]}
    configs = trained_configs(plan(tmp_path, BudgetConfig("steps", 7), method_overrides=geometry))
    assert {name: config.trainer.max_steps for name, config in configs.items()} == dict.fromkeys(TRAINED, 7)


def test_a_flops_budget_gives_each_method_the_whole_steps_its_own_step_flops_fit(tmp_path):
    budget = 5e11  # rag+lora's index (2.7e11 FLOPs) comes out of it first
    configs = trained_configs(plan(tmp_path, BudgetConfig("flops", budget)))
    assert set(configs) == TRAINED
    step_flops = {name: estimated_step_flops(config) for name, config in configs.items()}
    steps = {name: config.trainer.max_steps for name, config in configs.items()}
    for name in configs:
        left = budget - (index_flops(configs[name].index_source) if name == "rag+lora" else 0.0)
        assert steps[name] * step_flops[name] <= left < (steps[name] + 1) * step_flops[name], name
        assert steps[name] > 1, name  # the budget above is worth several steps of every method
    # full fine-tuning's steps cost more (weight gradients of every parameter): the adapters get more of them
    for adapter in ("lora", "ia3", "prompt"):
        assert step_flops[adapter] < step_flops["full"] and steps[adapter] > steps["full"], adapter
    # a RAG step reads k rows per question, each with a passage besides the question: more than k closed-book rows
    k = configs["rag+lora"].rag.k
    assert k == 2 and step_flops["rag+lora"] > k * step_flops["lora"]
    assert steps["rag+lora"] < steps["lora"]
    rag = configs["rag+lora"]
    doubled = replace(rag, rag=replace(rag.rag, k=2 * k))
    assert estimated_example_tokens(doubled, False) == 2 * estimated_example_tokens(rag, False)


def test_step_flops_are_the_trainers_formula_over_hand_counted_parameters_and_tokens(tmp_path, monkeypatch):
    geometry = {"lora": ["trainer.num_workers=2", "trainer.grad_accum_steps=2"]}
    cells = plan(tmp_path, BudgetConfig("steps", 2), methods=["full", "lora"], method_overrides=geometry)
    full, lora = cells["full-seed0"].config, cells["lora-seed0"].config
    # the tiny Llama: tied embeddings, no biases, MLP twice as wide, one KV head per query head, RMSNorm weights;
    # LoRA of rank r on every linear layer but the head adds r * (inputs + outputs) per layer
    h, layers, r = full.model.hidden_size, full.model.num_layers, lora.peft.r
    assert (h, layers, r, lora.peft.target_modules) == (64, 2, 16, ["all-linear"])
    mlp = 2 * h
    vocab = len(build_tokenizer(full.model))
    total = vocab * h + layers * (4 * h * h + 3 * h * mlp + 2 * h) + h
    adapter = layers * r * (4 * (h + h) + 2 * (h + mlp) + (mlp + h))
    monkeypatch.setattr(budget_module, "estimated_example_tokens", lambda config, is_seq2seq: 30.25)
    monkeypatch.setattr(budget_module, "_PER_EXAMPLE", {})  # estimates cached by earlier tests used real tokens

    # 4 questions a step; 6 FLOPs per parameter and token
    assert estimated_step_flops(full) == 30.25 * 4 * 6 * total
    # 4 questions x 2 micro-batches x 2 workers; forward and backward through all, weight gradients of the adapter
    assert estimated_step_flops(lora) == 30.25 * 16 * (4 * (total + adapter) + 2 * adapter)


def test_estimated_step_flops_are_what_the_trainer_counts(tmp_path):
    """Two steps of 4 are one pass over the 8 training examples the estimate samples: the trainer's tokens and FLOPs
    over them must be the estimate's, for questions, for the late articles' text and for QA pairs about them."""
    freshness = FreshnessConfig(variants=["text", "qa"], budget=BudgetConfig("flops", 1e11), max_text_tokens=64)
    cells = plan(
        tmp_path,
        BudgetConfig("flops", 1e11),
        "trainer.launcher=local",
        methods=["lora", "prompt"],
        freshness=freshness,
    )
    assert set(cells) == {f"{m}-seed0{kind}" for m in ("lora", "prompt") for kind in ("", ".fresh_text", ".fresh_qa")}
    for cell_id in ("lora-seed0", "lora-seed0.fresh_text", "lora-seed0.fresh_qa", "prompt-seed0"):
        config = cells[cell_id].config
        assert config.data.max_train_examples == 8 and config.trainer.batch_size == 4
        short = replace(config, trainer=replace(config.trainer, max_steps=2, init_from=None))
        state = train(short).state
        assert state.step == 2
        assert state.tokens == pytest.approx(8 * estimated_example_tokens(config, False), rel=1e-3), cell_id
        assert state.flops == pytest.approx(2 * estimated_step_flops(config), rel=1e-3), cell_id
