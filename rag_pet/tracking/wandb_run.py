"""One W&B run per job: offline by default (files under the run dir), online when the user configures it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import wandb

from rag_pet.config import TrackingConfig
from rag_pet.naming import safe_name


def start_run(
    settings: TrackingConfig,
    run_dir: Path,
    name: str,
    config: dict[str, Any],
    job_type: str,
    run_id: str | None = None,
):
    """A W&B run logging into `<run_dir>/wandb` with the resolved config, named `settings.name` or `name`;
    `mode=disabled` logs nothing. With `run_id`, the run of that id is resumed (online) or written again
    (offline)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return wandb.init(
        id=run_id,
        resume="allow" if run_id else None,
        project=settings.project,
        entity=settings.entity,
        group=settings.group,
        name=settings.name or name,
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
        log_record(run, record, prefix)


def log_record(run, record: dict, prefix: str) -> None:
    """Log one training record's numbers under `prefix/` at its `step`."""
    numbers = {f"{prefix}/{k}": v for k, v in record.items() if k != "step" and isinstance(v, (int, float))}
    run.log(numbers, step=int(record["step"]))


def log_result_rows(run, rows: list[dict]) -> None:
    """The result rows as one W&B table, and each row's numbers in the run summary as `<method>/<metric>`."""
    columns = sorted({key for row in rows for key in row})
    run.log({"results": wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in rows])})
    for row in rows:
        run.summary.update({f"{row['method']}/{k}": v for k, v in row.items() if isinstance(v, (int, float))})


def log_model_artifact(run, name: str, model_dir: Path, copy: bool) -> None:
    """The trained weights in `model_dir` as a `model` artifact: copied into the run (an adapter, megabytes) or, with
    `copy` false, referenced by path (a fully fine-tuned model, too large to duplicate)."""
    artifact = wandb.Artifact(artifact_name(name), type="model")
    if copy:
        artifact.add_dir(str(model_dir))
    else:
        artifact.add_reference(model_dir.resolve().as_uri(), checksum=False)
    run.log_artifact(artifact)


def log_file_artifact(run, name: str, path: Path, kind: str) -> None:
    """One file (an index manifest) as an artifact of type `kind`."""
    artifact = wandb.Artifact(artifact_name(name), type=kind)
    artifact.add_file(str(path))
    run.log_artifact(artifact)


def artifact_name(name: str) -> str:
    """`name` with every character W&B refuses in artifact names made `-`."""
    return safe_name(name, keep=".-", fill="-", empty="artifact")
