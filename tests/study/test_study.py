"""The comparison study end to end on tiny models: cells on Ray, a failing cell reported, resume, validation."""

import csv
import json
import logging
import shlex
from pathlib import Path

import pytest

from rag_pet.config import TrackingConfig
from rag_pet.console import CONSOLE
from rag_pet.errors import ConfigError
from rag_pet.study import BudgetConfig, CompareConfig, StudyConfig
from rag_pet.study.cells import plan_cells
from rag_pet.study.flow import run_study
from rag_pet.study.placement import share_cpus
from rag_pet.study.spec import FreshnessConfig, KnowledgeConfig
from tests.conftest import CONF_DIR

TINY = [
    "debug=tiny",
    "retriever=tiny",
    "index.shard_cpus=0.1",
    "index.encode_cpus=0.5",
    "rag.k=2",
    "rag.passage_max_tokens=24",
    "trainer.cpus_per_worker=1",
    "trainer.max_failures=0",
    "eval.batch_size=4",
    "data.chat_template=false",  # the tiny tokenizer has no chat template
]


def tiny_study(tmp_path, *overrides: str, **fields) -> CompareConfig:
    study = StudyConfig(
        name="tiny",
        methods=fields.pop("methods", ["zero_shot", "lora", "rag", "ia3"]),
        seeds=fields.pop("seeds", [0, 1]),
        budget=fields.pop("budget", BudgetConfig("steps", 2)),
        train_examples=8,
        questions=4,
        latency_questions=2,
        forgetting_texts=2,
        freshness=fields.pop("freshness", FreshnessConfig(enabled=False)),
        protocol=fields.pop("protocol", "questions_only"),
        knowledge=fields.pop("knowledge", KnowledgeConfig()),  # the plain recipe: 3 passes, nothing mixed in
        overrides=[*TINY, f"index.storage_path={tmp_path / 'indexes'}", *overrides],
        **fields,
    )
    return CompareConfig(study=study, study_dir=str(tmp_path / "study"), tracking=TrackingConfig(mode="disabled"))


def small_study(root, study_dir) -> CompareConfig:
    """lora and rag+lora, one seed, knowledge-matched over a 64-passage index kept in `root`, without latency or
    forgetting, each cell training in its Ray task (`study.launcher=auto`): the study the test session runs once
    (`tiny_study_run`) for the tests that read or serve its cells or run it again."""
    compare = tiny_study(
        root,
        "corpus.max_passages=64",
        methods=["lora", "rag+lora"],
        seeds=[0],
        protocol="knowledge_matched",
        knowledge=KnowledgeConfig(epochs=1),
    )
    compare.study_dir = str(study_dir)
    compare.study.latency_questions = compare.study.forgetting_texts = 0
    return compare


# A second whole study (with -m slow), as is one whose cells fail; the default suite runs `tiny_study_run`.
@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
def test_a_study_runs_every_cell_reports_a_failed_one_and_resumes_without_rerunning(tmp_path, caplog):
    # ia3's cells load a model folder that does not exist: they fail at run time, the others must finish
    compare = tiny_study(
        tmp_path,
        "corpus.max_passages=64",
        method_overrides={"ia3": ["model.source=path", f"model.path={tmp_path / 'missing'}"]},
        parallel_cells=2,  # two cells at a time on the 4 logical CPUs of the test's Ray instance
    )
    caplog.set_level(logging.INFO, logger=CONSOLE)
    summary = run_study(compare, CONF_DIR)
    study_dir = tmp_path / "study"

    assert summary["failed"] == ["ia3-seed0", "ia3-seed1"]
    records = {p.stem: json.loads(p.read_text()) for p in (study_dir / "cells").glob("*.json")}
    assert set(records) == {"zero_shot", "lora-seed0", "lora-seed1", "rag", "ia3-seed0", "ia3-seed1"}
    # the console has one progress line per cell, counting up to all of them, saying which failed
    progress = [r.getMessage() for r in caplog.records if r.name == CONSOLE and r.getMessage().startswith("[")]
    assert sorted(line.split()[1] for line in progress) == sorted(records)
    assert [line.split()[0] for line in progress] == [f"[{n}/6]" for n in range(1, 7)]
    assert all((" failed in " in line) == line.split()[1].startswith("ia3") for line in progress)
    assert "left" not in progress[-1] and all("left" in line for line in progress[:-1])
    assert "model.path" in records["ia3-seed0"]["error"]
    lora = records["lora-seed0"]["metrics"]
    assert lora["train_steps"] == 2 and lora["trainable_params"] > 0
    for key in ("exact_match@validation_seen", "exact_match@train", "batch1_latency_p95_ms", "forgetting"):
        assert key in lora, key
    assert "retrieval_recall@5" in records["rag"]["metrics"]
    # forgetting: the trained generator's loss on the general texts minus the untrained one's, which is the
    # zero-shot cell's (the same base model on the same texts)
    base_loss = records["zero_shot"]["metrics"]["general_text_loss"]
    for seed in (0, 1):
        trained = records[f"lora-seed{seed}"]["metrics"]
        assert trained["general_text_loss_before"] == pytest.approx(base_loss, rel=1e-5)
        assert trained["general_text_loss"] != pytest.approx(base_loss, rel=1e-5)  # two LoRA steps moved it
        assert trained["forgetting"] == pytest.approx(trained["general_text_loss"] - base_loss, rel=1e-4)
    assert records["lora-seed1"]["config"]["seed"] == 1

    # the report's numbers are the cells' numbers
    rows = {row["id"]: row for row in csv.DictReader((study_dir / "results.csv").open())}
    for cell_id, record in records.items():
        assert rows[cell_id]["status"] == record["status"]
        if record["status"] == "done":
            assert float(rows[cell_id]["f1"]) == record["metrics"]["f1"]
    report = (study_dir / "report.md").read_text()
    lora_f1 = [records[f"lora-seed{s}"]["metrics"]["f1"] for s in (0, 1)]
    lora_line = next(line for line in report.splitlines() if line.startswith("| lora |"))
    assert f"{sum(lora_f1) / 2:.3f}" in lora_line
    assert "| ia3 | failed |" in report and records["ia3-seed0"]["error"] in report
    zero_shot_line = next(line for line in report.splitlines() if line.startswith("| zero_shot |"))
    assert f"{records['zero_shot']['metrics']['f1']:.3f}" in zero_shot_line
    assert "python -m jobs.train experiment=closed_book_lora peft=lora" in report
    for plot in ("accuracy_vs_cost.png", "accuracy_vs_latency.png"):
        assert (study_dir / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a re-run re-uses every finished cell and tries the failed ones again
    finished = {cell_id: r["finished_at"] for cell_id, r in records.items() if r["status"] == "done"}
    mtimes = {cell_id: (study_dir / "cells" / f"{cell_id}.json").stat().st_mtime_ns for cell_id in finished}
    again = run_study(compare, CONF_DIR)
    assert again["failed"] == ["ia3-seed0", "ia3-seed1"]
    for cell_id in finished:
        assert (study_dir / "cells" / f"{cell_id}.json").stat().st_mtime_ns == mtimes[cell_id]


# A study of its own: the fresh cells' plan is test_knowledge's, a grown corpus's index test_build's (-m slow).
@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["local", "ray"])
@pytest.mark.usefixtures("ray_local")
def test_late_articles_reach_rag_through_a_grown_index_and_closed_book_through_more_training(tmp_path, launcher):
    freshness = FreshnessConfig(variants=["text", "qa"], budget=BudgetConfig("steps", 2), max_text_tokens=32)
    compare = tiny_study(
        tmp_path,
        f"trainer.launcher={launcher}",
        methods=["zero_shot", "lora", "rag+lora"],
        seeds=[0],
        freshness=freshness,
    )
    summary = run_study(compare, CONF_DIR)
    study_dir = tmp_path / "study"
    assert summary["failed"] == []
    records = {p.stem: json.loads(p.read_text()) for p in (study_dir / "cells").glob("*.json")}
    assert set(records) == {
        "zero_shot",
        "lora-seed0",
        "lora-seed0.fresh_text",
        "lora-seed0.fresh_qa",
        "rag_lora-seed0",
        "rag_lora-seed0.fresh_index",
    }
    main, text = records["lora-seed0"], records["lora-seed0.fresh_text"]
    assert text["config"]["trainer"]["init_from"] == str(
        study_dir / "cells" / "lora-seed0" / "final_checkpoint" / "model"
    )
    assert text["config"]["data"]["train_on"] == "passages" and text["metrics"]["train_steps"] == 2
    assert records["lora-seed0.fresh_qa"]["config"]["data"]["train_split"] == "test_train"
    # before = the main cell on the late articles' questions; after = the freshness cell on the same questions
    assert "exact_match@test" in main["metrics"]
    assert text["config"]["data"]["eval_split"] == "test"
    from rag_pet.data.squad import split_squad
    from rag_pet.evaluation.steps import eval_folder

    def asked(cell_id: str, label: str) -> list[str]:
        predictions = study_dir / "cells" / cell_id / "eval" / eval_folder(label) / "predictions.jsonl"
        return [json.loads(line)["id"] for line in predictions.read_text().splitlines()]

    before = asked("lora-seed0", "lora@test")
    assert len(before) == 4 and len(set(before)) == 4  # study.questions
    for fresh_cell in ("lora-seed0.fresh_text", "lora-seed0.fresh_qa"):
        assert asked(fresh_cell, "lora") == before, fresh_cell
    assert asked("rag_lora-seed0.fresh_index", "rag+lora") == asked("rag_lora-seed0", "rag+lora@test") == before
    data = records["lora-seed0.fresh_qa"]["config"]["data"]
    fields = ("split_seed", "validation_articles", "test_articles", "seen_holdout")
    split = split_squad(*(data[f] for f in fields), test_train_fraction=data["test_train_fraction"])
    qa_trained_on = {example.id for example in split.examples["test_train"]}
    assert qa_trained_on and not qa_trained_on & set(before)  # no method is scored on questions it trained on

    held_back = records["rag_lora-seed0"]["config"]["corpus"]["exclude_titles"]
    assert len(held_back) == 5 and records["rag_lora-seed0.fresh_index"]["config"]["corpus"]["exclude_titles"] == []
    grown = json.loads((study_dir / "shared.json").read_text())
    (entry,) = grown.values()
    assert entry["fresh"]["version"] == entry["version"] + 1
    assert entry["fresh"]["num_vectors"] == entry["num_vectors"] + entry["fresh"]["passages_added"]
    assert entry["fresh"]["passages_added"] > 0 and entry["fresh"]["encode_flops"] > 0

    updates = {(row["method"], row["kind"]) for row in summary["freshness"]}
    assert updates == {
        ("zero_shot", "none"),
        ("lora", "fresh_text"),
        ("lora", "fresh_qa"),
        ("rag+lora", "fresh_index"),
    }
    report = (study_dir / "report.md").read_text()
    assert "## Knowledge freshness" in report and "new passages added to the index" in report
    assert f"Scored on {len(before)} of their questions (" in report  # the questions asked, not study.questions
    assert (study_dir / "freshness.png").read_bytes()[:4] == b"\x89PNG"


def test_an_unknown_method_fails_before_ray_starts_and_lists_the_methods(tmp_path, monkeypatch):
    def no_ray():
        raise AssertionError("Ray must not start for an invalid study")

    monkeypatch.setattr("rag_pet.runtime.ensure_ray", no_ray)
    with pytest.raises(ConfigError, match="study.methods='rag_lora'.*zero_shot, full, lora.*rag\\+lora.*joint_rag"):
        run_study(tiny_study(tmp_path, methods=["lora", "rag_lora"]), CONF_DIR)


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        (BudgetConfig("examples", 3), "study.budget.amount=3 .*at least 4 examples"),
        (BudgetConfig("flops", 1000.0), "study.budget.amount=1000.0 .*FLOPs"),
    ],
)
def test_a_budget_below_one_step_fails_at_validation(tmp_path, budget, message):
    compare = tiny_study(tmp_path, methods=["lora"], budget=budget)
    with pytest.raises(ConfigError, match=message):
        plan_cells(compare.study, tmp_path, CONF_DIR, compare.tracking)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"budget": BudgetConfig("tokens", 5)}, "study.budget.unit"),
        ({"budget": BudgetConfig("steps", 2.5)}, "study.budget.amount"),
        ({"methods": []}, "study.methods"),
        ({"seeds": [0, 0]}, "study.seeds"),
        ({"method_overrides": {"dora": ["trainer.lr=1e-5"]}}, "study.method_overrides"),
    ],
)
def test_study_fields_are_checked(fields, field):
    with pytest.raises(ConfigError, match=field.replace(".", "\\.")):
        StudyConfig(**fields)


def test_a_bad_override_names_itself(tmp_path):
    compare = tiny_study(tmp_path, methods=["lora"])
    compare.study.overrides.append("trainer.nope=1")
    with pytest.raises(ConfigError, match="study.overrides='trainer.nope=1'"):
        plan_cells(compare.study, tmp_path, CONF_DIR, compare.tracking)


SLOW_TO_PLAN = {"cpu_full", "paper"}  # 20 s each on 2 cores: they plan over SQuAD's whole corpus and many cells


def _slow_to_plan(study: str, *values) -> object:
    return pytest.param(study, *values, marks=[pytest.mark.slow] if study in SLOW_TO_PLAN else [])


@pytest.mark.parametrize("name", [_slow_to_plan(path.stem) for path in sorted((CONF_DIR / "study").glob("*.yaml"))])
def test_every_shipped_study_composes_and_plans(name, tmp_path):
    from rag_pet.config import to_structured
    from rag_pet.config.compose import compose
    from rag_pet.study import register_study_configs

    register_study_configs()
    compare = to_structured(compose(CONF_DIR, [f"study={name}", f"study_dir={tmp_path}"], "compare"), CompareConfig)
    assert compare.study.name == name
    compare.study.seeds = compare.study.seeds[:1]  # other seeds compose the same cells again
    cells = plan_cells(compare.study, tmp_path, CONF_DIR, compare.tracking)
    assert {cell.method.name for cell in cells} == set(compare.study.methods)


def _header_commands() -> list[tuple[str, list[str]]]:
    """Each complete `python -m jobs.compare ...` command in a shipped study's header comment, as its arguments
    (lines ending in a backslash continue; a command with a `...` placeholder is left out)."""
    found = []
    for path in sorted((CONF_DIR / "study").glob("*.yaml")):
        lines = [line.removeprefix("#").strip() for line in path.read_text().splitlines() if line.startswith("#")]
        text = "\n".join(lines).replace("\\\n", " ")
        for line in text.splitlines():
            if "python -m jobs.compare" in line and "..." not in line:
                found.append((path.stem, shlex.split(line.split("python -m jobs.compare", 1)[1])))
    return found


@pytest.mark.parametrize(("study", "arguments"), [_slow_to_plan(*command) for command in _header_commands()])
def test_the_commands_in_study_headers_compose_and_plan(study, arguments, tmp_path):
    from rag_pet.config import to_structured
    from rag_pet.config.compose import compose
    from rag_pet.study import register_study_configs

    register_study_configs()
    compare = to_structured(compose(CONF_DIR, [*arguments, f"study_dir={tmp_path}"], "compare"), CompareConfig)
    compare.study.seeds = compare.study.seeds[:1]
    assert plan_cells(compare.study, tmp_path, CONF_DIR, compare.tracking)


@pytest.mark.parametrize(
    "methods",
    [["rag+lora"], pytest.param(["lora", "rag+lora"], marks=pytest.mark.slow)],  # slow: the reading cell's chain too
)
def test_cells_trained_in_their_tasks_answer_every_question_as_cells_trained_on_ray_train(
    tiny_study_run, tmp_path, methods
):
    """The session's study trained each cell inside its Ray task (`study.launcher=auto`); the same cells on Ray
    Train (`study.launcher=ray`, the path every cell took before) answer and score every question identically."""
    first, root = tiny_study_run
    on_ray_train = small_study(root, tmp_path / "ray_train")
    on_ray_train.study.methods = methods
    on_ray_train.study.launcher = "ray"
    assert run_study(on_ray_train, CONF_DIR)["failed"] == []
    runs = []
    for compare in (first, on_ray_train):
        cells = sorted((Path(compare.study_dir) / "cells").glob("*.json"))
        runs.append({path.stem: json.loads(path.read_text()) for path in cells})
    assert set(runs[0]) == {"lora-seed0.knowledge", "lora-seed0", "rag_lora-seed0"}
    assert "rag_lora-seed0" in runs[1] and set(runs[1]) <= set(runs[0])
    for cell, record in runs[1].items():
        assert record["config"]["trainer"]["launcher"] == "ray"
        in_task = runs[0][cell]
        assert in_task["config"]["trainer"]["launcher"] == "local" and "trainer.launcher=local" in in_task["overrides"]
        assert record["metrics"]["train_steps"] == in_task["metrics"]["train_steps"] > 0
        assert record["questions"] == in_task["questions"], cell
    assert all(q["answer_nll"] is not None for q in runs[0]["rag_lora-seed0"]["questions"]["validation"])


@pytest.mark.slow  # repeats the session's study
def test_the_same_study_twice_gives_identical_per_question_records(tiny_study_run, tmp_path):
    """Reproducibility: two runs of one study (fresh directories, one machine) answer and score every question
    identically, so a study's figures can be traced to its command. The first run is the session's."""
    first, root = tiny_study_run
    second = small_study(root, tmp_path / "second")
    assert run_study(second, CONF_DIR)["failed"] == []
    runs = []
    for compare in (first, second):
        cells = sorted((Path(compare.study_dir) / "cells").glob("*.json"))
        runs.append({path.stem: json.loads(path.read_text())["questions"] for path in cells})
    assert set(runs[0]) == {"lora-seed0.knowledge", "lora-seed0", "rag_lora-seed0"}
    assert runs[0].pop("lora-seed0.knowledge") == runs[1].pop("lora-seed0.knowledge") == {}  # it answers nothing
    for cell, splits in runs[0].items():
        assert splits["validation"] and all(q["answer_nll"] is not None for q in splits["validation"])
        assert splits == runs[1][cell], cell


def test_each_cell_is_composed_once_and_its_command_rebuilds_its_config(tmp_path, monkeypatch):
    from rag_pet.experiment_config import compose_experiment
    from rag_pet.study import cells as cells_module

    calls = []

    def counting(config_dir, overrides, field="overrides"):
        calls.append(list(overrides))
        return compose_experiment(config_dir, overrides, field)

    monkeypatch.setattr(cells_module, "compose_experiment", counting)
    freshness = FreshnessConfig(variants=["text", "qa"], budget=BudgetConfig("steps", 2), max_text_tokens=32)
    compare = tiny_study(tmp_path, methods=["zero_shot", "lora", "rag+lora"], seeds=[0, 1], freshness=freshness)
    planned = plan_cells(compare.study, tmp_path / "study", CONF_DIR, compare.tracking)
    assert len(calls) == len(planned) == 1 + 2 * 3 + 2 * 2  # zero_shot; lora + text + qa; rag+lora + fresh index
    for cell in planned:  # budget, held-back titles and CPUs were applied to the composed config, not composed again
        assert compose_experiment(CONF_DIR, list(cell.overrides)) == cell.config, cell.id
    assert share_cpus(planned, 2.0) == planned  # the study's overrides set trainer.cpus_per_worker

    compare.study.overrides = [o for o in compare.study.overrides if not o.startswith("trainer.cpus_per_worker=")]
    compare.study.methods, compare.study.seeds = ["lora"], [0]
    compare.study.freshness = FreshnessConfig(enabled=False)
    (lora,) = share_cpus(plan_cells(compare.study, tmp_path / "s", CONF_DIR, compare.tracking), 3.0)
    assert lora.config.trainer.cpus_per_worker == pytest.approx(3.0 / lora.config.trainer.num_workers, rel=1e-5)
    assert compose_experiment(CONF_DIR, list(lora.overrides)) == lora.config


@pytest.mark.slow  # a second study through the command line
def test_a_study_whose_cells_failed_exits_non_zero_after_writing_its_report(ray_local, tmp_path):
    import os
    import subprocess
    import sys

    elements = [*TINY, "model.source=path", f"model.path={tmp_path / 'missing'}", f"index.storage_path={tmp_path}"]
    overrides = ",".join(json.dumps(element) for element in elements)  # elements holding `=` are quoted
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobs.compare",
            "study=smoke",
            "study.methods=[zero_shot]",
            "study.freshness.enabled=false",
            "study.latency_questions=0",
            "study.forgetting_texts=0",
            f"study.overrides=[{overrides}]",
            f"study_dir={tmp_path / 'study'}",
            "tracking=disabled",
        ],
        cwd=CONF_DIR.parent,
        env={**os.environ, "RAY_ADDRESS": ray_local.get_runtime_context().gcs_address},  # no Ray of its own to start
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.splitlines()[-1] == "error: 1 of 1 study cells failed (see above and the report)"
    assert "model.path" in (tmp_path / "study" / "report.md").read_text()
    # the terminal: where the log is, the plan, a line per cell, the results and where the report is
    lines = result.stdout.splitlines()
    assert lines[0] == f"log: {tmp_path / 'study' / 'compare.log'}" and lines[1].startswith("study smoke: 1 cells")
    assert any(line.startswith("[1/1] zero_shot failed in ") for line in lines)
    assert lines[-1].startswith("report: ") and len(lines) <= 12
    assert result.stderr.splitlines()[0].startswith("error: cell zero_shot failed after ")


def test_the_time_left_counts_each_cell_at_the_mean_time_of_finished_cells_of_its_kind():
    from types import SimpleNamespace

    from rag_pet.study.runner import time_left

    remaining = [SimpleNamespace(kind=kind) for kind in ("knowledge", "main", "fresh_index", "fresh_index")]
    durations = {"knowledge": [600.0, 800.0], "main": [100.0], "fresh_index": [20.0]}
    assert time_left(remaining, durations, parallel=1) == 700 + 100 + 20 + 20
    assert time_left(remaining, durations, parallel=2) == (700 + 100 + 20 + 20) / 2
    overall = (600 + 800 + 100) / 3  # no fresh cell has finished yet: those count at the mean of every cell
    assert time_left(remaining, {"knowledge": [600.0, 800.0], "main": [100.0]}, parallel=1) == 700 + 100 + 2 * overall
