"""What a sweep leaves: every trial's point and metric, sorted (`summary.json`, `summary.csv`), and the best trial's
experiment as a yaml that `python -m jobs.train` runs as is."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import yaml
from ray.tune import ResultGrid

from rag_pet.config import to_dict
from rag_pet.errors import RagPetError
from rag_pet.evaluation.report import format_columns
from rag_pet.experiment import run_metrics
from rag_pet.storage import write_json_atomic, write_text_atomic
from rag_pet.sweep.plan import SweepPlan
from rag_pet.sweep.stopped_runs import complete_stopped_run
from rag_pet.sweep.trial import FINISHED, trial_dir

FINISHED_STATUS, STOPPED, FAILED = "finished", "stopped early", "failed"
BEST_DIR, BEST_NAME = "experiment", "best"
# Keys of a trial's config that belong to the sweep run, not to the experiment the best yaml re-runs.
NOT_REUSED = ("run_dir", "sweep")


def summarise(plan: SweepPlan, results: ResultGrid, group: str) -> dict:
    """The trials sorted best first (finished by the sweep's metric, then stopped early, then failed), written with
    the best experiment yaml, the stopped trials' W&B runs completed; raises when no trial finished."""
    sweep = plan.sweep
    trials = [(result, _row(plan, result)) for result in results]
    for result, row in trials:
        if row["status"] == STOPPED and (Path(row["run_dir"]) / "config.json").is_file():
            complete_stopped_run(Path(row["run_dir"]), _reports(result), STOPPED)
    rows = sorted((row for _, row in trials), key=lambda row: _rank(row, sweep.metric, sweep.mode))
    summary = {
        "sweep": sweep.name,
        "metric": sweep.metric,
        "mode": sweep.mode,
        "sweep_dir": str(plan.sweep_dir),
        "group": group,
        "trials": rows,
        "best": None,
    }
    finished = [row for row in rows if row["status"] == FINISHED_STATUS]
    if finished:
        best = finished[0]
        summary["best"] = {**best, "experiment_yaml": str(write_best_experiment(plan, best))}
    write_json_atomic(plan.sweep_dir / "summary.json", summary)
    write_text_atomic(plan.sweep_dir / "summary.csv", _csv(rows, plan))
    if not finished:
        raise RagPetError(f"sweep error: no trial of {sweep.name} finished; see {plan.sweep_dir / 'summary.json'}")
    return summary


def _row(plan: SweepPlan, result) -> dict[str, Any]:
    metrics = result.metrics or {}
    trial_id = metrics.get("trial_id") or Path(result.path).name
    if result.error is not None:
        status = FAILED
    else:
        status = FINISHED_STATUS if metrics.get(FINISHED) else STOPPED
    row = {
        "trial_id": trial_id,
        "status": status,
        "params": dict(result.config),
        "metric": metrics.get(plan.sweep.metric),
        "early_stop_metric": metrics.get(plan.sweep.early_stop_metric),
        "reports": metrics.get("training_iteration", 0),
        "run_dir": str(trial_dir(plan.sweep_dir, trial_id)),
        "metrics": run_metrics([metrics]),
    }
    if result.error is not None:
        row["error"] = str(result.error).strip().splitlines()[-1][:300]
    return row


def _reports(result) -> list[dict]:
    """Every result Tune received from a trial, oldest first, as plain records."""
    frame = result.metrics_dataframe
    if frame is None:
        return []
    return [{k: v for k, v in record.items() if v == v} for record in frame.to_dict("records")]  # v == v: not NaN


def _rank(row: dict, metric: str, mode: str) -> tuple:
    order = {FINISHED_STATUS: 0, STOPPED: 1, FAILED: 2}[row["status"]]
    value = row["metric"]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return order, 1, 0.0
    return order, 0, -value if mode == "max" else value


def write_best_experiment(plan: SweepPlan, best: dict) -> Path:
    """`<sweep_dir>/experiment/best.yaml`: the best trial's whole resolved config as an experiment (groups' values
    included), so `python -m jobs.train --config-dir <sweep_dir> experiment=best` re-runs it anywhere.

    The config is composed again from the trial's point (composition is deterministic), not read from the trial's
    directory, which on a cluster lies on the node that ran it; what the sweep itself set for running trials side by
    side (`trainer.cpus_per_worker`, `trainer.max_relaunches`) goes back to the experiment's own values."""
    config = to_dict(plan.trial_config(best["params"], Path(best["run_dir"])))
    for key in NOT_REUSED:
        config.pop(key, None)
    trainer = plan.base.trainer
    config["trainer"].update(cpus_per_worker=trainer.cpus_per_worker, max_relaunches=trainer.max_relaunches)
    config["experiment_name"] = f"{plan.base.experiment_name}_best"
    header = (
        "# @package _global_\n"
        f"# Best trial of sweep {plan.sweep.name} ({plan.sweep.metric}={best['metric']}, trial {best['trial_id']}):"
        f" {json.dumps(best['params'])}\n"
        f"# Run it: python -m jobs.train --config-dir {plan.sweep_dir} experiment={BEST_NAME}\n"
        f"# (or copy it to conf/experiment/<name>.yaml and run python -m jobs.train experiment=<name>)\n"
    )
    path = plan.sweep_dir / BEST_DIR / f"{BEST_NAME}.yaml"
    write_text_atomic(path, header + yaml.safe_dump(config, sort_keys=False))
    return path


def _csv(rows: list[dict], plan: SweepPlan) -> str:
    keys = sorted({key for row in rows for key in row["params"]})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["trial_id", "status", *keys, plan.sweep.metric, plan.sweep.early_stop_metric, "reports"])
    for row in rows:
        params = [row["params"].get(key) for key in keys]
        scores = [row["metric"], row["early_stop_metric"], row["reports"]]
        writer.writerow([row["trial_id"], row["status"], *params, *scores])
    return out.getvalue()


def format_sweep_summary(summary: dict) -> str:
    """What `python -m jobs.sweep` prints: the trials best first, the best experiment and how to run and sync it."""
    keys = sorted({key for row in summary["trials"] for key in row["params"]})
    rows = [{**row, **{f"p:{key}": row["params"].get(key) for key in keys}} for row in summary["trials"]]
    columns = (
        ("trial", "trial_id", "{}"),
        ("status", "status", "{}"),
        *((key, f"p:{key}", "{:.4g}" if _numeric(rows, f"p:{key}") else "{}") for key in keys),
        (summary["metric"], "metric", "{:.4f}"),
        ("reports", "reports", "{}"),
    )
    lines = [f"\nsweep {summary['sweep']} ({summary['mode']} {summary['metric']}):", format_columns(rows, columns)]
    best = summary["best"]
    if best:
        lines += [
            f"best: trial {best['trial_id']} {summary['metric']}={best['metric']:.4f} {json.dumps(best['params'])}",
            f"best experiment: {best['experiment_yaml']}",
            f"run it: python -m jobs.train --config-dir {summary['sweep_dir']} experiment={BEST_NAME}",
        ]
    lines.append(f"sweep directory: {summary['sweep_dir']}")
    runs = sorted(Path(summary["sweep_dir"]).glob("trials/*/wandb/offline-run-*"))
    if runs:
        lines.append(f"W&B: {len(runs)} offline runs in group {summary['group']}; upload with:")
        lines.append(f"  wandb sync {summary['sweep_dir']}/trials/*/wandb/offline-run-*")
    return "\n".join(lines)


def _numeric(rows: list[dict], key: str) -> bool:
    return all(isinstance(row.get(key), (int, float)) for row in rows if row.get(key) is not None)
