"""Data-needs curves (`study.budgets`): the curve cells a study plans, their budgets, where two methods' curves cross,
the report's section and plot, and one data-needs study end to end on tiny models."""

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from rag_pet.config import TrackingConfig
from rag_pet.errors import ConfigError
from rag_pet.experiment_config import compose_experiment
from rag_pet.objectives import study_method
from rag_pet.study import BudgetConfig, StudyConfig
from rag_pet.study.budget import estimated_step_flops
from rag_pet.study.cells import plan_cells
from rag_pet.study.curve_cells import CURVE, curve_steps
from rag_pet.study.curves import crossings, data_needs, sign_flips
from rag_pet.study.flow import run_study
from rag_pet.study.index_cost import index_flops
from rag_pet.study.names import KNOWLEDGE, MAIN
from rag_pet.study.report import write_report
from rag_pet.study.spec import FreshnessConfig
from tests.conftest import CONF_DIR
from tests.study.test_analysis import QUESTIONS, record
from tests.study.test_study import TINY, tiny_study


def plan(tmp_path, *overrides: str, **fields) -> dict:
    compare = tiny_study(tmp_path, *overrides, **fields)
    return {c.id: c for c in plan_cells(compare.study, Path(compare.study_dir), CONF_DIR, compare.tracking)}


def test_trained_methods_get_a_curve_cell_per_seed_on_the_first_n_questions_for_a_share_of_the_budget(tmp_path):
    cells = plan(tmp_path, methods=["zero_shot", "lora", "rag"], budgets=[4, 8])  # 8: the main cells' size

    assert {i for i, c in cells.items() if c.kind == CURVE} == {"lora-seed0.n4", "lora-seed1.n4"}
    for seed in (0, 1):
        main, curve = cells[f"lora-seed{seed}"], cells[f"lora-seed{seed}.n4"]
        assert curve.config.data.max_train_examples == 4 and main.config.data.max_train_examples == 8
        assert curve.config.trainer.max_steps * 2 == main.config.trainer.max_steps
        assert curve.config.seed == seed and curve.after is None
        assert curve.config.data.eval_split == "validation" and curve.config.eval.extra_splits == []
        assert curve.config.eval.latency_questions == curve.config.eval.forgetting_texts == 0
        # otherwise the main cell's very config: model, adapter, learning rate, data, retrieval
        for section in ("model", "peft", "rag", "corpus", "index"):
            assert getattr(curve.config, section) == getattr(main.config, section), section
        same = ("lr", "batch_size", "grad_accum_steps", "num_workers", "init_from")
        assert {k: getattr(curve.config.trainer, k) for k in same} == {k: getattr(main.config.trainer, k) for k in same}
        data = {k: v for k, v in asdict(curve.config.data).items() if k != "max_train_examples"}
        assert data == {k: v for k, v in asdict(main.config.data).items() if k != "max_train_examples"}
        assert "data.max_train_examples=4" in curve.command and curve.config.run_dir != main.config.run_dir


def test_under_knowledge_matched_a_curve_cell_goes_on_from_its_main_cells_knowledge_cell(tmp_path):
    cells = plan(
        tmp_path,
        "corpus.max_passages=60",
        methods=["lora"],
        seeds=[0],
        budgets=[4],
        protocol="knowledge_matched",
        budget=BudgetConfig("examples", 16),
    )

    assert [c.kind for c in cells.values()] == [KNOWLEDGE, MAIN, CURVE]  # no second knowledge cell
    knowledge, main, curve = cells["lora-seed0.knowledge"], cells["lora-seed0"], cells["lora-seed0.n4"]
    assert curve.after == main.after == knowledge.id
    assert curve.config.trainer.init_from == main.config.trainer.init_from == str(knowledge.model_dir)
    # 16 examples over 8 questions: two passes, so 8 examples (2 steps of 4) over 4 questions
    assert (main.config.trainer.max_steps, curve.config.trainer.max_steps) == (4, 2)


def test_every_unit_scales_to_the_same_passes_and_a_flops_budget_keeps_the_index(tmp_path):
    method = study_method("rag+lora")
    config = compose_experiment(
        CONF_DIR, [*method.overrides, *TINY, f"index.storage_path={tmp_path}", f"run_dir={tmp_path / 'run'}"]
    )
    per_step, index = estimated_step_flops(config), index_flops(config.index_source)
    assert curve_steps(BudgetConfig("steps", 6), config, 0.5, True) == 3
    assert curve_steps(BudgetConfig("steps", 2), config, 0.25, True) == 1  # at least one step
    assert curve_steps(BudgetConfig("examples", 32), config, 0.5, True) == 4  # 16 examples, 4 a step
    # the main cell trains (index + 6.5 steps - index) // step = 6 steps; half the questions, half of that
    assert curve_steps(BudgetConfig("flops", index + 6.5 * per_step), config, 0.5, True) == 3
    assert curve_steps(BudgetConfig("flops", 6.5 * per_step), config, 0.5, False) == 3


@pytest.mark.parametrize(
    ("size", "allowed"),
    [
        (100_000, "at most [0-9]+, the questions of the train split"),
        (2, r"at least one batch of every worker \(4 x 1\)"),
    ],
)
def test_an_impossible_size_is_refused_before_ray_naming_study_budgets(tmp_path, size, allowed):
    with pytest.raises(ConfigError, match=rf"study\.budgets={size}.*{allowed}"):
        plan(tmp_path, methods=["lora"], seeds=[0], budgets=[size])


@pytest.mark.parametrize(("budgets", "allowed"), [([4, 0], "a number > 0"), ([4, 4], "each training-set size once")])
def test_sizes_must_be_positive_and_distinct(budgets, allowed):
    with pytest.raises(ConfigError, match=rf"study\.budgets=.*{allowed}"):
        StudyConfig(budgets=budgets)


def test_the_crossing_is_interpolated_between_the_sizes_that_bracket_the_flip():
    sizes = [4, 16, 64, 256]
    # a trails b up to 16 and leads from 64: a - b goes -0.1 -> +0.1, zero halfway between 16 and 64
    assert sign_flips(sizes, [0.1, 0.2, 0.4, 0.5], [0.3, 0.3, 0.3, 0.3]) == [(1, 2, pytest.approx(40.0))]
    assert sign_flips(sizes, [0.5, 0.6, 0.7, 0.8], [0.1, 0.3, 0.6, 0.79]) == []  # a is always ahead
    assert sign_flips(sizes, [0.2, 0.3, 0.4, 0.5], [0.3, 0.3, 0.3, 0.3]) == [(0, 2, 16.0)]  # across a tie: at it
    assert sign_flips(sizes, [0.4, 0.3, 0.4, 0.5], [0.3, 0.3, 0.3, 0.3]) == []  # touching is not crossing
    # twice: ahead, behind, ahead again
    flips = sign_flips(sizes, [0.4, 0.2, 0.4, 0.2], [0.3, 0.3, 0.3, 0.3])
    assert [(i, j) for i, j, _ in flips] == [(0, 1), (1, 2), (2, 3)]


def test_crossings_name_who_leads_before_and_after_lower_nll_being_better():
    rows = [
        {"method": m, "size": s, "f1": f1, "answer_nll": nll}
        for m, s, f1, nll in [
            ("rag", 8, 0.3, 2.0),
            ("rag", 32, 0.3, 2.0),
            ("lora", 8, 0.1, 3.0),
            ("lora", 32, 0.5, 1.0),
            ("zero_shot", 8, 0.05, 4.0),
            ("zero_shot", 32, 0.05, 4.0),
        ]
    ]
    for metric in ("f1", "answer_nll"):
        (found,) = crossings(rows, ["zero_shot", "lora", "rag"], metric)
        assert (found.before, found.after, found.low, found.high) == ("rag", "lora", 8, 32)
        assert found.at == pytest.approx(20.0)


def curve_record(method: str, seed: int, size: int, f1, nll) -> dict:
    found = record(method, seed, np.zeros(QUESTIONS), f1, nll, kind=CURVE)
    return {**found, "id": f"{method}-seed{seed}.n{size}", "config": {"data": {"max_train_examples": size}}}


def curve_study(budgets: list[int]) -> StudyConfig:
    return StudyConfig(
        name="curves",
        methods=["zero_shot", "lora", "rag"],
        seeds=[0],
        train_examples=64,
        budgets=budgets,
        questions=QUESTIONS,
        freshness=FreshnessConfig(enabled=False),
    )


@pytest.fixture(scope="module")
def curve_records() -> list[dict]:
    """lora learns with data (F1 +0, +0.15, +0.3 over zero-shot at 8, 32, 64 questions) and passes rag (+0.2)
    between 32 and 64; its NLL passes rag's too."""
    rng = np.random.default_rng(0)
    f1, nll, zero = rng.uniform(0.0, 0.3, QUESTIONS), rng.uniform(3.0, 4.0, QUESTIONS), np.zeros(QUESTIONS)
    return [
        record("zero_shot", 0, zero, f1, nll),
        record("rag", 0, zero, f1 + 0.2, nll - 1.0),
        record("lora", 0, zero, f1 + 0.3, nll - 1.5),
        curve_record("lora", 0, 8, f1, nll),
        curve_record("lora", 0, 32, f1 + 0.15, nll - 0.5),
    ]


def test_each_size_reads_its_own_cells_and_flat_methods_stand_at_every_size(curve_records):
    rows = {(r["method"], r["size"]): r for r in data_needs(curve_study([8, 32]), curve_records)}
    assert set(rows) == {(m, s) for m in ("zero_shot", "lora", "rag") for s in (8, 32, 64)}
    for size, cell in ((8, 3), (32, 4), (64, 2)):
        assert rows[("lora", size)]["f1"] == pytest.approx(curve_records[cell]["metrics"]["f1"])
        assert rows[("lora", size)]["f1_low"] <= rows[("lora", size)]["f1"] <= rows[("lora", size)]["f1_high"]
    assert rows[("rag", 8)] | {"size": 64} == rows[("rag", 64)] and not rows[("rag", 8)]["trains"]
    assert data_needs(curve_study([]), curve_records) == []


def cells_of(line: str) -> list[str]:
    """The cells of a markdown table row after its first (the method)."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")][1:]


def test_the_report_has_a_data_needs_section_with_intervals_and_crossings_and_the_plot(curve_records, tmp_path):
    write_report(curve_study([8, 32]), tmp_path, curve_records, {}, TrackingConfig(mode="disabled"))
    report = (tmp_path / "report.md").read_text()
    section = report.split("## Data needs")[1].split("\n## ")[0]

    assert "| method | 8 | 32 | 64 (main) |" in section
    lora_rows = [line for line in section.splitlines() if line.startswith("| lora |")]
    assert len(lora_rows) == 3  # EM, F1, NLL
    assert [float(cell.split(" [")[0]) for cell in cells_of(lora_rows[1])] == pytest.approx(
        [r["metrics"]["f1"] for r in (curve_records[3], curve_records[4], curve_records[2])], abs=5e-4
    )
    rag_f1 = cells_of([line for line in section.splitlines() if line.startswith("| rag |")][1])
    assert len(rag_f1) == 3 and len(set(rag_f1)) == 1  # the same score at every size
    # F1: -0.05 at 32, +0.1 at 64 -> 32 + 32 / 3; NLL: +0.5 at 32, -0.5 at 64 -> 48
    assert "F1: `lora` overtakes `rag` between 32 and 64 training questions (about 43" in section
    assert (
        "answer NLL (lower is better): `lora` overtakes `rag` between 32 and 64 training questions (about 48" in section
    )
    crossing_lines = section.split("### Where the curves cross")[1].splitlines()
    assert len([line for line in crossing_lines if "overtakes" in line]) == 2  # zero_shot is never ahead
    assert "not tested" in section
    assert "![data_needs](data_needs.png)" in report
    assert (tmp_path / "data_needs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_budgets_there_is_no_data_needs_section_or_plot(curve_records, tmp_path):
    write_report(curve_study([]), tmp_path, curve_records[:3], {}, TrackingConfig(mode="disabled"))
    assert "## Data needs" not in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "data_needs.png").exists()


@pytest.mark.usefixtures("ray_local")
def test_a_data_needs_study_runs_end_to_end(tmp_path):
    compare = tiny_study(tmp_path, "trainer.launcher=local", methods=["zero_shot", "lora"], seeds=[0], budgets=[4, 8])
    compare.study.latency_questions = compare.study.forgetting_texts = 0
    summary = run_study(compare, CONF_DIR)
    study_dir = Path(compare.study_dir)

    assert summary["failed"] == []
    records = {p.stem: json.loads(p.read_text()) for p in (study_dir / "cells").glob("*.json")}
    assert set(records) == {"zero_shot", "lora-seed0", "lora-seed0.n4"}
    curve, main = records["lora-seed0.n4"], records["lora-seed0"]
    assert curve["kind"] == CURVE and list(curve["questions"]) == ["validation"]
    assert (curve["metrics"]["train_steps"], main["metrics"]["train_steps"]) == (1, 2)
    asked = [[q["id"] for q in r["questions"]["validation"]] for r in (curve, main)]
    assert asked[0] == asked[1] and len(asked[0]) == 4  # the same unseen questions at every size
    section = (study_dir / "report.md").read_text().split("## Data needs")[1].split("\n## ")[0]
    for method in ("zero_shot", "lora"):
        assert len([line for line in section.splitlines() if line.startswith(f"| {method} |")]) == 3
    assert (study_dir / "data_needs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
