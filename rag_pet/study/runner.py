"""Run a study: validate every cell, build each shared index once, tune each trained method (`study.tune`), run the
cells on Ray (several at once when the cluster has room), skip cells that finished before, keep going past a cell
that fails, then write the report."""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from statistics import fmean

import ray

from rag_pet import runtime
from rag_pet.config import to_dict
from rag_pet.console import console_logger, duration
from rag_pet.errors import RagPetError
from rag_pet.objectives import objective_of
from rag_pet.run_lock import run_directory_lock
from rag_pet.storage import write_json_atomic
from rag_pet.study.cells import CELLS_DIR, FRESH_INDEX, MAIN, Cell, plan_cells
from rag_pet.study.cleanup import drop_resume_checkpoints
from rag_pet.study.environment import environment
from rag_pet.study.index_cost import index_costs
from rag_pet.study.placement import in_their_tasks, share_cpus
from rag_pet.study.provenance import provenance_of, rerun_reason, stale_reason
from rag_pet.study.questions import cell_questions
from rag_pet.study.recorded import STUDY_FILE, read_record, report_recorded
from rag_pet.study.report import write_report
from rag_pet.study.shared import build_shared_indexes, index_key
from rag_pet.study.spec import CompareConfig, StudyConfig
from rag_pet.study.tuning import plan_tuning, tuned_cells
from rag_pet.training.launcher import worker_request
from rag_pet.training.ray_context import worker_threads

logger = logging.getLogger(__name__)


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


def parallel_cells(study: StudyConfig) -> int:
    """`study.parallel_cells`, or (0) as many cells as the cluster's CPUs hold at `study.cpus_per_cell` each."""
    if study.parallel_cells:
        return study.parallel_cells
    return max(1, int(ray.cluster_resources().get("CPU", 1) // study.cpus_per_cell))


def cell_record_path(study_dir: Path, cell: Cell) -> Path:
    return study_dir / CELLS_DIR / f"{cell.id}.json"


def finished_record(study_dir: Path, cell: Cell, base: dict | None = None) -> dict | None:
    """The record of this cell when it finished before and still stands: same overrides, same provenance (code
    revision, uncommitted changes, package versions, hashes of the weights, data and index it reads) and, for a
    freshness cell, made from the base cell's record `base` that is re-used now (None: the base runs again, so its
    weights will be new). A stale cell starts again from an empty run directory (its old checkpoints belong to
    another config, code or base) and its new record says why (`rerun_reason`); see `provenance_changes` for how
    a tree with uncommitted changes is treated."""
    record = read_record(cell_record_path(study_dir, cell))
    if record is None:
        return None
    reason = stale_reason(record, cell, provenance_of(cell), base)
    if reason:
        logger.info("cell %s runs again: %s", cell.id, reason)
        shutil.rmtree(study_dir / CELLS_DIR / cell.id, ignore_errors=True)
        return None
    return record if record.get("status") == "done" else None


@ray.remote(num_cpus=0, max_retries=0)
def _run_cell(cell: Cell, threads: int) -> dict:
    """Ray task: the cell's ordinary run (what its `python -m jobs.train|evaluate <overrides>` runs). It reserves
    no CPUs: its Train workers and index shards hold theirs, and it evaluates once they are done, on `threads`
    threads."""
    import torch

    from rag_pet.experiment import evaluate_model, run_experiment

    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(threads)
    return evaluate_model(cell.config) if cell.job == "evaluate" else run_experiment(cell.config)


def _start(cell: Cell, threads: int) -> ray.ObjectRef:
    """Start the cell's task. A cell that trains evaluates on the threads its worker trained on, whether it trains
    in its task (`trainer.launcher=local`, the task then holds what its Ray Train worker would have held) or on Ray
    Train: the same reductions on the same thread count, so both paths score every question to the last bit. An
    evaluation cell evaluates on `threads`, its share of the cluster."""
    if cell.job != "train":
        return _run_cell.remote(cell, threads)
    request = worker_request(cell.config, objective_of(cell.config))
    if cell.config.trainer.launcher != "local":
        return _run_cell.remote(cell, worker_threads(request.cpus))
    options = {"num_cpus": request.cpus, "num_gpus": request.gpus}
    return _run_cell.options(**options).remote(cell, worker_threads(request.cpus))


def run_cells(cells: list[Cell], study_dir: Path, parallel: int) -> list[dict]:
    """Run every unfinished or stale cell, `parallel` at a time; the record of every cell, in plan order (each
    re-run cell's record says why under `rerun_reason`)."""
    records: dict[str, dict | None] = {}
    for cell in cells:  # plan order: a freshness cell comes after its base cell, whose decision it follows
        records[cell.id] = finished_record(study_dir, cell, records.get(cell.after) if cell.after else None)
    skipped = [cell_id for cell_id, record in records.items() if record is not None]
    if skipped:
        console_logger().info("re-using %d finished cell(s): %s", len(skipped), ", ".join(skipped))
    pending = [cell for cell in cells if records[cell.id] is None]
    threads = max(1, math.floor(ray.cluster_resources().get("CPU", 1) / parallel))
    running: dict[ray.ObjectRef, tuple[Cell, float]] = {}
    durations: dict[str, list[float]] = {}  # by cell kind
    while pending or running:
        for cell in _startable(pending, records, parallel - len(running)):
            pending.remove(cell)
            base = records.get(cell.after) if cell.after else None
            if cell.after and (base is None or base["status"] != "done"):
                records[cell.id] = _record(cell, 0.0, study_dir, error=f"its base cell {cell.after} failed")
                continue
            running[_start(cell, threads)] = (cell, time.monotonic())
            if not durations:  # the first cells: a line before the first one finishes
                console_logger().info("running %s", cell.id)
        if not running:
            continue
        ready, _ = ray.wait(list(running), num_returns=1)
        cell, started = running.pop(ready[0])
        seconds = time.monotonic() - started
        durations.setdefault(cell.kind, []).append(seconds)
        records[cell.id] = _finish(cell, ready[0], seconds, study_dir)
        left = time_left(pending + [running_cell for running_cell, _ in running.values()], durations, parallel)
        console_logger().info(_progress_line(cell, seconds, records, running, left))
    return [records[cell.id] for cell in cells]


def _startable(pending: list[Cell], records: dict[str, dict | None], free: int) -> list[Cell]:
    """Up to `free` pending cells, in plan order, whose base cell (if any) has finished or failed."""
    ready = [cell for cell in pending if cell.after is None or records.get(cell.after) is not None]
    return ready[: max(free, 0)]


def _finish(cell: Cell, ref: ray.ObjectRef, seconds: float, study_dir: Path) -> dict:
    """The cell's record from its task: its metrics, or the error that stopped it."""
    try:
        summary = ray.get(ref)
    except Exception as err:  # a failed cell is reported in the table; the others go on
        return _record(cell, seconds, study_dir, error=_error_line(err))
    metrics = summary["rows"][-1]
    config = cell.config
    questions = cell_questions(config.run_dir, metrics["method"], config.data.eval_split, config.eval.extra_splits)
    record = _record(cell, seconds, study_dir, metrics=metrics, questions=questions)
    drop_resume_checkpoints(config.trainer, config.run_dir)  # never resumed now; final_checkpoint stays
    return record


def _record(
    cell: Cell,
    seconds: float,
    study_dir: Path,
    metrics: dict | None = None,
    error: str | None = None,
    questions: dict[str, list[dict]] | None = None,
):
    """Write the cell's record (what ran, on what, its metrics and per-question records per split, or its error;
    for a retrieving cell the FLOPs of building and of searching its index, `index_cost.index_costs`) next to its
    run directory, with its provenance and why it ran again (None for a first run): the base cell's
    record it follows is read back from disk."""
    base = read_record(study_dir / CELLS_DIR / f"{cell.after}.json") if cell.after else None
    provenance = provenance_of(cell)
    record = {
        "id": cell.id,
        "method": cell.method.name,
        "kind": cell.kind,
        "seed": cell.seed if cell.method.trains else None,
        "after": cell.after,
        "index": index_key(cell.config.index_source) if cell.method.retrieves else None,
        **(index_costs(cell.config) if cell.method.retrieves else {}),
        "command": cell.command,
        "overrides": list(cell.overrides),
        "wall_seconds": seconds,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "provenance": provenance,
        "base_finished_at": base.get("finished_at") if base else None,
        "rerun_reason": rerun_reason(read_record(cell_record_path(study_dir, cell)), cell, provenance, base),
        "config": to_dict(cell.config),
        "status": "failed" if error else "done",
        "error": error,
        "metrics": metrics or {},
        "questions": questions or {},
    }
    if error:
        logger.error("cell %s failed after %.0f s: %s", cell.id, seconds, error)
    else:
        logger.info("cell %s finished in %.0f s", cell.id, seconds)
    write_json_atomic(cell_record_path(study_dir, cell), record)
    return record


def _error_line(err: Exception) -> str:
    """The user error a cell raised (one line), else the last line of its traceback."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, RagPetError):
        return str(cause)
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(err).__name__


def time_left(remaining: list[Cell], durations: dict[str, list[float]], parallel: int) -> float:
    """About how many seconds the `remaining` cells take, `parallel` at a time: each at the mean time of the
    finished cells of its kind (a reading cell trains for minutes, a grown index's evaluation for seconds), or of
    every finished cell while none of its kind has finished."""
    overall = fmean(seconds for times in durations.values() for seconds in times)
    kind_mean = {kind: fmean(times) for kind, times in durations.items()}
    return sum(kind_mean.get(cell.kind, overall) for cell in remaining) / parallel


def _progress_line(cell: Cell, seconds: float, records: dict[str, dict | None], running: dict, left: float) -> str:
    """One line per finished cell: how many are done, this one's time, what runs now and about how long is left."""
    done = sum(record is not None for record in records.values())
    width = len(str(len(records)))
    status = records[cell.id]["status"]
    line = f"[{done:>{width}}/{len(records)}] {cell.id} {status} in {duration(seconds)}"
    if running:
        line += "; running " + ", ".join(running_cell.id for running_cell, _ in running.values())
    if left > 0:
        line += f"; about {duration(left)} left"
    return line
