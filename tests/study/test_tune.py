"""Tuned methods (`study.tune`): the dev split holds out training questions only, tuning trials score on it and on
no question a cell trains on or is evaluated on, a tuned study trains each method at its best trial's values, and a
bad tune config fails before anything runs."""

import json
from dataclasses import asdict, replace
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag_pet.config import DataConfig, TrackingConfig
from rag_pet.data.datasets import article_split, load_qa_split
from rag_pet.errors import ConfigError
from rag_pet.experiment_config import compose_experiment
from rag_pet.study import StudyConfig
from rag_pet.study.cells import plan_cells
from rag_pet.study.cost_report import budget_markdown
from rag_pet.study.flow import run_study
from rag_pet.study.names import MAIN
from rag_pet.study.report import write_report
from rag_pet.study.spec import FreshnessConfig
from rag_pet.study.tune_space import TuneConfig, tune_sweep
from rag_pet.study.tuning import plan_tuning, tuning_result
from rag_pet.study.tuning_report import tuning_markdown
from rag_pet.sweep.summary import FINISHED_STATUS, STOPPED
from tests.conftest import CONF_DIR
from tests.study.test_analysis import record
from tests.study.test_study import tiny_study

OTHER_SPLITS = ("validation_seen", "validation", "test", "test_train")


def ids(examples) -> set[str]:
    return {example.id for example in examples}


def tuned_study(tmp_path, *overrides: str, **fields):
    """A one-seed tiny study of zero_shot and lora with tuning on (2 trials), without latency or forgetting."""
    fields.setdefault("methods", ["zero_shot", "lora"])
    fields.setdefault("seeds", [0])
    fields.setdefault("tune", TuneConfig(enabled=True, lr_points=2))
    compare = tiny_study(tmp_path, *overrides, **fields)
    compare.study.latency_questions = compare.study.forgetting_texts = 0
    return compare


def planned(compare):
    """The study's cells and its methods' tuning sweeps, planned and checked as `run_study` plans them."""
    study_dir = Path(compare.study_dir)
    cells = plan_cells(compare.study, study_dir, CONF_DIR, compare.tracking)
    return cells, plan_tuning(compare.study, cells, study_dir, CONF_DIR)


@settings(max_examples=20, deadline=None)
@given(
    name=st.sampled_from(["squad", "fictional"]),
    seed=st.integers(0, 50),
    seen=st.floats(0.0, 0.4),
    dev=st.floats(0.0, 0.5),
    late=st.floats(0.0, 0.9),
)
def test_the_dev_split_takes_only_training_questions_and_leaves_every_other_split_as_it_was(
    name, seed, seen, dev, late
):
    base = DataConfig(name=name, split_seed=seed, seen_holdout=seen, test_train_fraction=late)
    without, with_dev = article_split(base), article_split(replace(base, dev_fraction=dev))
    held = with_dev.examples["dev"]
    for split in OTHER_SPLITS:
        assert with_dev.examples[split] == without.examples[split], split
        assert not ids(held) & ids(with_dev.examples[split]), split
    assert not ids(held) & ids(with_dev.examples["train"])
    assert held + with_dev.examples["train"] == without.examples["train"]  # moved out of the training questions
    pool = len(without.examples["train"]) + len(without.examples["validation_seen"])
    assert abs(len(held) - dev * pool) <= 1
    assert {example.article for example in held} <= set(with_dev.articles["train"])


def test_the_dev_split_is_empty_by_default_and_a_study_without_tuning_holds_none_out(tmp_path):
    assert article_split(DataConfig()).examples["dev"] == []
    compare = tiny_study(tmp_path, methods=["zero_shot", "lora"], seeds=[0])
    cells, tunings = planned(compare)
    assert tunings == []
    assert all(cell.config.data.dev_fraction == 0.0 for cell in cells)


def test_trials_score_on_dev_questions_no_cell_trains_on_or_is_evaluated_on(tmp_path):
    freshness = FreshnessConfig(variants=["text", "qa"])
    compare = tuned_study(tmp_path, methods=["zero_shot", "lora", "ia3"], seeds=[0, 1], freshness=freshness)
    cells, tunings = planned(compare)
    mains = {cell.id: cell for cell in cells if cell.kind == MAIN}
    assert [tuning.cell.id for tuning in tunings] == ["lora-seed0", "ia3-seed0"]  # trained methods, first seed

    split_ids = cache(lambda data, split: ids(load_qa_split(DataConfig(**json.loads(data)), split)))
    dev = set()
    for tuning in tunings:
        trial, main = tuning.plan.base, mains[tuning.cell.id].config
        assert (trial.data.eval_split, trial.eval.extra_splits) == ("dev", [])
        assert trial.trainer.max_steps == main.trainer.max_steps and trial.trainer.lr == main.trainer.lr
        trains_on = load_qa_split(trial.data, trial.data.train_split, trial.data.max_train_examples)
        assert trains_on == load_qa_split(main.data, main.data.train_split, main.data.max_train_examples)
        scored = ids(load_qa_split(trial.data, "dev", trial.data.max_eval_examples))
        assert scored
        dev |= scored
    for cell in cells:  # every question a cell may read, not only the first few it does
        data = cell.config.data
        key = json.dumps(asdict(data))
        for split in [data.eval_split, *cell.config.eval.extra_splits]:
            assert not dev & split_ids(key, split), (cell.id, split)
        if cell.method.trains and data.train_on == "questions":
            assert not dev & split_ids(key, data.train_split), cell.id


BAD_TUNES = {
    "study.tune.num_samples": {"num_samples": 0},
    "study.tune.lr_factor": {"lr_factor": [10.0, 0.1]},
    "study.tune.lr_points": {"lr_points": 1},
    "study.tune.space.trainer.lr.type": {"space": {"trainer": {"lr": {"type": "log", "lower": 1, "upper": 2}}}},
    "study.tune.scheduler.patience": {"scheduler": {"type": "asha", "patience": 2}},
    "study.tune.mode": {"mode": "lowest"},
    "study.tune.dev_fraction": {"dev_fraction": 1.5},
}


@pytest.mark.parametrize("field", list(BAD_TUNES))
def test_a_bad_tune_config_is_refused_naming_its_field(field):
    with pytest.raises(ConfigError) as found:
        StudyConfig(tune=TuneConfig(enabled=True, **BAD_TUNES[field]))
    assert found.value.field == field


@pytest.mark.parametrize(("search", "lr_points"), [("grid", None), ("optuna", 5)])
def test_a_learning_rate_grid_the_search_cannot_run_names_lr_points(search, lr_points):
    with pytest.raises(ConfigError) as found:
        StudyConfig(tune=TuneConfig(enabled=True, search=search, lr_points=lr_points))
    assert found.value.field == "study.tune.lr_points"


def test_every_method_tries_the_same_multiples_of_its_own_rate_and_its_own_rate_is_one_of_them():
    tune = TuneConfig(enabled=True)
    grids = {}
    for rate in (3e-5, 5e-4, 3e-2):
        values = tune_sweep(tune, "t", rate, 0).space["trainer"]["lr"]["values"]
        assert rate in values and min(values) == pytest.approx(rate * 0.1) and max(values) == pytest.approx(rate * 10)
        grids[rate] = [value / rate for value in values]
    first, *others = grids.values()
    for multiples in others:
        assert multiples == pytest.approx(first, rel=1e-2)  # 3 significant digits


# Refused when the trials are planned, before Ray starts: what only the experiment config can tell.
BAD_TRIALS = {
    "study.tune.metric": ({"metric": "bleu"}, ()),
    "study.tune.space.trainer.momentum": ({"space": {"trainer": {"momentum": {"type": "choice", "values": [1]}}}}, ()),
    "study.tune.dev_fraction": ({"dev_fraction": 1e-6}, ()),  # no question left for dev
    "study.tune.scheduler.metric": ({"scheduler": {"type": "asha", "metric": "f1", "mode": "max"}}, ()),
}


@pytest.mark.parametrize("field", list(BAD_TRIALS))
def test_a_tuning_the_experiment_cannot_run_is_refused_before_ray_starts(tmp_path, field):
    tune, overrides = BAD_TRIALS[field]
    compare = tuned_study(tmp_path, *overrides, tune=TuneConfig(enabled=True, **tune))
    with pytest.raises(ConfigError) as found:
        planned(compare)
    assert found.value.field == field


def trial(trial_id: str, status: str, lr: float, nll: float | None, metrics: dict) -> dict:
    return {"trial_id": trial_id, "status": status, "params": {"trainer.lr": lr}, "metric": nll, "metrics": metrics}


def test_the_tuning_record_counts_every_trial_and_the_report_shows_it(tmp_path):
    done = {"train_steps": 4, "train_flops": 2e9}
    summary = {
        "metric": "answer_nll",
        "mode": "min",
        "sweep_dir": str(tmp_path),
        "trials": [
            trial("t1", FINISHED_STATUS, 3e-4, 2.5, done),
            trial("t0", FINISHED_STATUS, 1e-3, 2.9, done),
            trial("t2", STOPPED, 5e-5, None, {"step": 2, "loss": 4.0}),  # stopped after 2 of its 4 steps
        ],
    }
    summary["best"] = summary["trials"][0]
    space = {"trainer": {"lr": {"type": "loguniform", "lower": 5e-5, "upper": 5e-3}}}
    result = {"method": "lora", **tuning_result(summary, space, 4, 61.0)}
    assert result["overrides"] == ["trainer.lr=0.0003"]
    composed = compose_experiment(CONF_DIR, ["debug=tiny", f"run_dir={tmp_path}", *result["overrides"]])
    assert composed.trainer.lr == 3e-4
    assert (result["trials"], result["train_steps"], result["train_flops"]) == (3, 10, 4e9)

    study = StudyConfig(methods=["zero_shot", "lora", "ia3"], tune=TuneConfig(enabled=True))
    section = "\n".join(tuning_markdown(study, [result]))
    (row,) = [line for line in section.splitlines() if line.startswith("| lora |")]
    for text in ("trainer.lr log-uniform 5e-05 to 0.005", "3 × 4 steps", "trainer.lr=0.0003", "| 2.5 |", "| 10 |"):
        assert text in row, text
    assert "No finished tuning for ia3" in section and "do not train: zero_shot" in section
    assert "5 learning rates log-spaced from 0.1x to 10x the method's own" in section
    grid = {"trainer": {"lr": {"type": "grid", "values": [5e-5, 5e-4, 5e-3]}}}
    ends = [{**result, "space": grid, "chosen": {"trainer.lr": lr}} for lr in (5e-3, 5e-4, 5e-5)]
    rows = [line for line in "\n".join(tuning_markdown(study, ends)).splitlines() if line.startswith("| lora |")]
    assert ["(upper end)" in rows[0], "end)" in rows[1], "(lower end)" in rows[2]] == [True, False, True]
    ia3 = {**result, "method": "ia3", "train_flops": 1e9}
    budget = "\n".join(budget_markdown(study, [], [result, ia3]))
    assert "1.00e+09 (ia3) to 4.00e+09 (lora) FLOPs per method, 5.00e+09 in all" in budget


def test_without_tuning_the_report_says_each_method_ran_at_its_default_rate(tmp_path):
    study = StudyConfig(name="plain", methods=["lora"], freshness=FreshnessConfig(enabled=False))
    lora = record("lora", 0, [0, 1], [0.2, 0.8], [3.0, 2.0])
    write_report(study, tmp_path, [lora], {}, TrackingConfig(mode="disabled"))
    section = (tmp_path / "report.md").read_text().split("## Tuning", 1)[1].split("\n## ", 1)[0]
    assert "study.tune.enabled=false" in section and "default learning rate" in section


# Two tuning trials, the lora cell and zero-shot on Ray, then the same study again: about 2-3 minutes on 2 cores.
@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
def test_a_tuned_study_trains_each_method_at_its_best_trial_and_reuses_the_tuning(tmp_path):
    compare = tuned_study(tmp_path)
    summary = run_study(compare, CONF_DIR)
    assert summary["failed"] == []
    study_dir = tmp_path / "study"
    assert sorted(p.name for p in (study_dir / "tune").iterdir()) == ["lora"]  # zero_shot does not train

    tuning = json.loads((study_dir / "tune" / "lora" / "tuning.json").read_text())
    trials = json.loads((study_dir / "tune" / "lora" / "summary.json").read_text())["trials"]
    finished = [t for t in trials if t["status"] == FINISHED_STATUS]
    assert len(trials) == 2 and tuning["trials"] == 2 and tuning["train_steps"] == 2 * 2
    best = min(finished, key=lambda t: t["metric"])
    assert tuning["chosen"] == best["params"] and tuning["best_metric"] == best["metric"]
    lr = best["params"]["trainer.lr"]
    assert sorted(t["params"]["trainer.lr"] for t in trials) == [5e-5, 5e-3]  # lora's 5e-4 times 0.1 and 10

    cells = {p.stem: json.loads(p.read_text()) for p in (study_dir / "cells").glob("*.json")}
    lora = cells["lora-seed0"]
    assert lora["config"]["trainer"]["lr"] == lr
    assert compose_experiment(CONF_DIR, lora["overrides"]).trainer.lr == lr  # its command trains at it too
    assert not any(o.startswith("trainer.lr=") for o in cells["zero_shot"]["overrides"])
    # the trials answered dev questions, none of which the lora cell trained on or was evaluated on
    main = compose_experiment(CONF_DIR, lora["overrides"]).data
    scored = set()
    for row in finished:
        result = json.loads((study_dir / "tune" / "lora" / "trials" / row["trial_id"] / "results.json").read_text())
        assert result["eval_split"] == "dev"
        predictions = (study_dir / "tune" / "lora" / "trials" / row["trial_id"]).glob("eval/*/predictions.jsonl")
        scored |= {json.loads(line)["id"] for path in predictions for line in path.read_text().splitlines()}
    assert scored and scored <= ids(load_qa_split(main, "dev"))
    trained = ids(load_qa_split(main, main.train_split, main.max_train_examples))
    evaluated = {q["id"] for split in lora["questions"].values() for q in split}
    assert not scored & (trained | evaluated)
    for row in trials:  # the trials' weights are gone once the tuning is recorded, their scores and logs stay
        trial = study_dir / "tune" / "lora" / "trials" / row["trial_id"]
        assert (trial / "results.json").is_file()
        assert not (trial / "checkpoints").exists() and not (trial / "final_checkpoint").exists()

    report = (study_dir / "report.md").read_text()
    section = report.split("## Tuning", 1)[1].split("\n## ", 1)[0]
    assert "| lora |" in section and f"trainer.lr={lr:.3g}" in section and "do not train: zero_shot" in section

    before = {
        path: path.stat().st_mtime_ns
        for path in (study_dir / "tune" / "lora" / "tuning.json", study_dir / "cells" / "lora-seed0.json")
    }
    assert run_study(compare, CONF_DIR)["failed"] == []
    assert {path: path.stat().st_mtime_ns for path in before} == before  # tuning and cell re-used
