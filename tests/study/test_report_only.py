"""`report_only=true` writes a study's report again from its cells' records and runs nothing; it refuses a study
that never ran, one with cells still to run, and a study config other than the one that ran."""

import copy
import json
import shutil
from pathlib import Path

import pytest

from rag_pet.errors import ConfigError
from rag_pet.study.flow import run_study
from tests.conftest import CONF_DIR


def _copy_of(tiny_study_run, tmp_path: Path):
    """The session study's records, plan and indexes' list in a folder of the test's own (weights left out); the
    report written there is the one to compare with."""
    compare, _ = tiny_study_run
    source = Path(compare.study_dir)
    target = tmp_path / "study"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("final_checkpoint", "wandb"))
    compare = copy.deepcopy(compare)
    compare.study_dir, compare.report_only = str(target), True
    return compare, source, target


def test_the_report_is_written_again_from_the_records_alone(tiny_study_run, tmp_path):
    compare, source, target = _copy_of(tiny_study_run, tmp_path)
    for name in ("report.md", "results.csv"):
        (target / name).unlink()
    records = {path.name: path.read_bytes() for path in (target / "cells").glob("*.json")}

    summary = run_study(compare, CONF_DIR)

    assert summary["failed"] == [] and summary["cells"] == len(records)
    written = (target / "report.md").read_text()
    assert written == (source / "report.md").read_text()  # every command and path as the cells ran
    assert (target / "results.csv").read_text() == (source / "results.csv").read_text()
    assert {path.name: path.read_bytes() for path in (target / "cells").glob("*.json")} == records  # nothing ran


def test_a_study_that_never_ran_is_refused(tiny_study_run, tmp_path):
    compare, _, _ = _copy_of(tiny_study_run, tmp_path)
    compare.study_dir = str(tmp_path / "empty")
    with pytest.raises(ConfigError, match=r"report_only=True .*no study ran in .*empty yet"):
        run_study(compare, CONF_DIR)


def test_cells_without_a_record_are_named(tiny_study_run, tmp_path):
    compare, _, target = _copy_of(tiny_study_run, tmp_path)
    plan = json.loads((target / "study.json").read_text())
    gone = plan["cells"][-1]["id"]
    (target / "cells" / f"{gone}.json").unlink()
    with pytest.raises(ConfigError, match=rf"1 have no record yet \({gone}\)"):
        run_study(compare, CONF_DIR)


def test_a_study_config_other_than_the_one_that_ran_is_refused_naming_the_field(tiny_study_run, tmp_path):
    compare, _, _ = _copy_of(tiny_study_run, tmp_path)
    compare.study.seeds = [*compare.study.seeds, 99]
    with pytest.raises(ConfigError, match=r"study\.seeds=.*99.* as the study in .* ran"):
        run_study(compare, CONF_DIR)
