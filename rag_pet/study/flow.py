"""A study from start to end, in the order it happens: plan every cell (validated before Ray starts) → tune each
trained method (`study.tune`), then plan its cells again with the values chosen → build each shared index once →
run the cells (`rag_pet.study.runner`) → write the report (`rag_pet.study.report`); or, with `report_only`, only the
report from the records on disk."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from rag_pet import runtime
from rag_pet.console import console_logger
from rag_pet.run_lock import run_directory_lock
from rag_pet.storage import write_json_atomic
from rag_pet.study.cells import plan_cells
from rag_pet.study.names import FRESH_INDEX, MAIN
from rag_pet.study.placement import in_their_tasks, share_cpus
from rag_pet.study.recorded import report_recorded
from rag_pet.study.records import STUDY_FILE
from rag_pet.study.report import write_report
from rag_pet.study.runner import parallel_cells, run_cells
from rag_pet.study.shared import build_shared_indexes
from rag_pet.study.spec import CompareConfig
from rag_pet.study.tuning import plan_tuning, tuned_cells


def run_study(compare: CompareConfig, config_dir: Path) -> dict:
    """Run (or resume) the study in `compare.study_dir`, or only write its report (`compare.report_only`); the
    report's summary (rows, paths, failed cells)."""
    study = compare.study
    study_dir = Path(compare.study_dir).expanduser().resolve()
    if compare.report_only:
        with run_directory_lock(study_dir):  # not while the study runs there
            return report_recorded(study, study_dir, compare.tracking)
    cells = plan_cells(study, study_dir, config_dir, compare.tracking)  # validates everything before Ray starts
    tunings = plan_tuning(study, cells, study_dir, config_dir)  # and each trained method's tuning (study.tune)
    with run_directory_lock(study_dir):
        runtime.ensure_ray()
        shared = build_shared_indexes(
            [c.config for c in cells if c.method.retrieves and c.kind == MAIN],
            [c.config for c in cells if c.kind == FRESH_INDEX],
            study_dir,
        )
        if tunings:  # its trials read the shared indexes; the cells then train with the values it chose
            cells = tuned_cells(study, tunings, study_dir, config_dir, compare.tracking)
        cells = in_their_tasks(cells, study.launcher)
        parallel = parallel_cells(study)
        if parallel > 1:
            cells = share_cpus(cells, study.cpus_per_cell)
        write_json_atomic(
            study_dir / STUDY_FILE,
            {"study": asdict(study), "cells": [{"id": c.id, "command": c.command} for c in cells]},
        )
        console_logger().info(
            "study %s: %d cells (%d methods, seeds %s), %d at a time, in %s",
            study.name,
            len(cells),
            len(study.methods),
            study.seeds,
            parallel,
            study_dir,
        )
        records = run_cells(cells, study_dir, parallel)
        return write_report(study, study_dir, records, shared, compare.tracking)
