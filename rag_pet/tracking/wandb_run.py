"""One W&B run per job: offline by default (files under the run dir), online when the user configures it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import wandb

from rag_pet.config import TrackingConfig


def start_run(settings: TrackingConfig, run_dir: Path, name: str, config: dict[str, Any], job_type: str):
    """A W&B run logging into `<run_dir>/wandb` with the resolved config; `mode=disabled` logs nothing."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return wandb.init(
        project=settings.project,
        entity=settings.entity,
        group=settings.group,
        name=name,
        job_type=job_type,
        tags=list(settings.tags),
        config=config,
        dir=str(run_dir),
        mode=settings.mode,
        reinit="create_new",
        settings=wandb.Settings(silent=True, console="off"),
    )


def log_history(run, history: list[dict], prefix: str) -> None:
    """Log per-step training records (each with a `step`) under `prefix/`."""
    for record in history:
        run.log({f"{prefix}/{key}": value for key, value in record.items() if key != "step"}, step=record["step"])


def log_result_rows(run, rows: list[dict]) -> None:
    """The result rows as one W&B table, and each row's numbers in the run summary as `<method>/<metric>`."""
    columns = sorted({key for row in rows for key in row})
    run.log({"results": wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in rows])})
    for row in rows:
        run.summary.update({f"{row['method']}/{k}": v for k, v in row.items() if isinstance(v, (int, float))})
