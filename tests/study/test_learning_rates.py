"""Each trained study method trains at its own learning rate, a user's override wins, and the report lists the rates
the cells' configs trained at."""

import csv

import numpy as np
import pytest

from rag_pet.config import PEFT_METHODS_TRAINABLE, TrackingConfig
from rag_pet.experiment_config import compose_experiment
from rag_pet.objectives import study_method, study_methods
from rag_pet.objectives.closed_book import LEARNING_RATES
from rag_pet.study import StudyConfig
from rag_pet.study.cells import plan_cells
from rag_pet.study.names import MAIN
from rag_pet.study.report import write_report
from rag_pet.study.spec import FreshnessConfig
from tests.conftest import CONF_DIR
from tests.study.test_analysis import record
from tests.study.test_study import tiny_study


def lr_of(name: str) -> float:
    """The learning rate a study method's own overrides set."""
    (rate,) = [o.removeprefix("trainer.lr=") for o in study_method(name).overrides if o.startswith("trainer.lr=")]
    return float(rate)


def test_every_trained_method_sets_its_own_rate_and_soft_prompts_and_ia3_train_faster_than_lora_than_full():
    assert set(LEARNING_RATES) == set(PEFT_METHODS_TRAINABLE)
    trained = [method.name for method in study_methods().values() if method.trains]
    assert all(lr_of(name) > 0 for name in trained)
    assert min(lr_of("ia3"), lr_of("prompt"), lr_of("prefix")) > lr_of("lora") > lr_of("full")
    # a PET method trains at one rate whether or not it reads passages
    assert all(lr_of(f"rag+{pet}") == lr_of(pet) for pet in set(PEFT_METHODS_TRAINABLE) - {"full"})
    assert not any(o.startswith("trainer.lr=") for o in study_method("zero_shot").overrides)


def test_a_cell_trains_at_its_method_rate_unless_the_user_overrides_it(tmp_path):
    compare = tiny_study(tmp_path, methods=["full", "lora", "ia3"], seeds=[0])
    compare.study.method_overrides = {"ia3": ["trainer.lr=7e-5"]}
    planned = plan_cells(compare.study, tmp_path, CONF_DIR, compare.tracking)
    cells = {cell.method.name: cell for cell in planned if cell.kind == MAIN}
    # the method's rate beats debug=tiny's trainer.lr among the study's overrides, the user's beats the method's
    assert cells["full"].config.trainer.lr == pytest.approx(LEARNING_RATES["full"])
    assert cells["lora"].config.trainer.lr == pytest.approx(LEARNING_RATES["lora"])
    assert cells["ia3"].config.trainer.lr == pytest.approx(7e-5)
    for cell in cells.values():  # the cell's command trains at the same rate
        assert compose_experiment(CONF_DIR, list(cell.overrides)).trainer.lr == cell.config.trainer.lr

    compare.study.method_overrides = {}
    compare.study.overrides.append("trainer.lr=2e-4")
    cells = plan_cells(compare.study, tmp_path, CONF_DIR, compare.tracking)
    assert all(cell.config.trainer.lr == pytest.approx(2e-4) for cell in cells)


def with_lr(cell: dict, lr: float) -> dict:
    return {**cell, "config": {"trainer": {"lr": lr}}}


def test_the_report_lists_the_rate_each_trained_method_ran_at(tmp_path):
    rng = np.random.default_rng(0)
    zero, f1, nll = np.zeros(16), rng.uniform(0.0, 0.5, 16), rng.uniform(3.0, 4.0, 16)
    records = [
        with_lr(record("zero_shot", 0, zero, f1, nll), 2e-4),  # the config's unused default: not a training rate
        with_lr(record("lora", 0, zero, f1, nll), 5e-4),
        with_lr(record("lora", 1, zero, f1, nll), 5e-4),
        with_lr(record("ia3", 0, zero, f1, nll), 7e-5),  # a user's override
    ]
    study = StudyConfig(
        name="rates", methods=["zero_shot", "lora", "ia3"], seeds=[0, 1], freshness=FreshnessConfig(enabled=False)
    )
    write_report(study, tmp_path, records, {}, TrackingConfig(mode="disabled"))
    section = (tmp_path / "report.md").read_text().split("## Learning rates", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    assert lines == ["| method | learning rate |", "| lora | 0.0005 |", "| ia3 | 7e-05 |"]
    with (tmp_path / "results.csv").open() as handle:
        rates = {row["id"]: row["learning_rate"] for row in csv.DictReader(handle)}
    assert rates == {"zero_shot-seed0": "", "lora-seed0": "0.0005", "lora-seed1": "0.0005", "ia3-seed0": "7e-05"}
