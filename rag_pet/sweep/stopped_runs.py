"""The W&B runs of trials ASHA stopped early, completed from the sweep's driver.

A stopped trial's actor is killed, and its W&B run dies with it before its records are written: the offline run
holds no more than its header. The driver still has everything Tune received from that trial, so it writes the run
again under the same id, name, group and config, with the training curve up to the stop."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from rag_pet.config import TrackingConfig
from rag_pet.tracking import log_record, start_run

OFFLINE_RUN_GLOB = "wandb/offline-run-*"
TRIAL_JOB_TYPE = "sweep_trial"


def complete_stopped_run(run_dir: Path, reports: list[dict], status: str) -> None:
    """Write a stopped trial's W&B run again: its resolved config (`<run_dir>/config.json`), every training report
    Tune received (each with its `step`) and its `status`."""
    config = json.loads((run_dir / "config.json").read_text())
    tracking = TrackingConfig(**config["tracking"])
    if tracking.mode == "disabled":
        return
    partial = sorted(run_dir.glob(OFFLINE_RUN_GLOB))
    run_id = partial[-1].name.rsplit("-", 1)[-1] if partial else None
    for directory in partial:  # offline: the header the killed trial left is replaced by the whole run
        shutil.rmtree(directory)
    run = start_run(tracking, run_dir, config["experiment_name"], config, TRIAL_JOB_TYPE, run_id=run_id)
    try:
        for report in reports:
            if report.get("step") is not None:
                log_record(run, report, "train")
        run.summary["status"] = status
    finally:
        run.finish()
