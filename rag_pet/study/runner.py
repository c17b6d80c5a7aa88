"""Run a study's planned cells on Ray: several at once when the cluster has room, each in its own task (training in
it, or on Ray Train), skipping cells that finished before, going on past a cell that fails, with a progress line
per finished cell. What runs them in order is `rag_pet.study.flow`."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from statistics import fmean

import ray

from rag_pet.console import console_logger, duration
from rag_pet.errors import RagPetError
from rag_pet.objectives import objective_of
from rag_pet.study.cells import Cell
from rag_pet.study.cleanup import drop_resume_checkpoints
from rag_pet.study.questions import cell_questions
from rag_pet.study.records import finished_record, write_cell_record
from rag_pet.study.spec import StudyConfig
from rag_pet.training.launcher import worker_request
from rag_pet.training.ray_context import worker_threads

logger = logging.getLogger(__name__)


def parallel_cells(study: StudyConfig) -> int:
    """`study.parallel_cells`, or (0) as many cells as the cluster's CPUs hold at `study.cpus_per_cell` each."""
    if study.parallel_cells:
        return study.parallel_cells
    return max(1, int(ray.cluster_resources().get("CPU", 1) // study.cpus_per_cell))


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
    in_task = cell.config.trainer.launcher == "local"
    task = _run_cell.options(num_cpus=request.cpus, num_gpus=request.gpus) if in_task else _run_cell
    return task.remote(cell, worker_threads(request.cpus))


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
                records[cell.id] = write_cell_record(cell, 0.0, study_dir, error=f"its base cell {cell.after} failed")
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
        return write_cell_record(cell, seconds, study_dir, error=_error_line(err))
    metrics = summary["rows"][-1]
    config = cell.config
    questions = cell_questions(config.run_dir, metrics["method"], config.data.eval_split, config.eval.extra_splits)
    record = write_cell_record(cell, seconds, study_dir, metrics=metrics, questions=questions)
    drop_resume_checkpoints(config.trainer, config.run_dir)  # never resumed now; final_checkpoint stays
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
