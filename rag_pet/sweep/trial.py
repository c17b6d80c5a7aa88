"""One sweep trial: Tune's function trainable that runs an ordinary experiment, its Ray Train run reporting to Tune
through `TuneReportCallback` (the Train V2 way), then reports the evaluated metrics as the trial's last result."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback

from rag_pet.experiment import method_label, run_experiment
from rag_pet.sweep.plan import SweepPlan

TRIALS_DIR = "trials"
# Marks a trial's last result as the evaluated one: a trial ASHA stopped early never reports it.
FINISHED = "trial_finished"


def trial_dir(sweep_dir: Path, trial_id: str) -> Path:
    """Where a trial's run writes (its config, checkpoints, evaluation, W&B run)."""
    return sweep_dir / TRIALS_DIR / trial_id


def run_trial(point: dict[str, Any], plan: SweepPlan, group: str, threads: int) -> None:
    """Compose the trial's experiment from `point`, run it with Train reporting to Tune, report its metrics.

    The trial's W&B run joins `group`, named by experiment, method and trial and tagged with them."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(threads)  # the trial actor holds no CPU of its own; it evaluates on its trial's share
    trial_id = tune.get_context().get_trial_id()
    config = plan.trial_config(point, trial_dir(plan.sweep_dir, trial_id))
    method = method_label(config, trained=True)
    name = f"{config.experiment_name}-{method}-{trial_id}"
    tags = [*config.tracking.tags, config.experiment_name, method, plan.sweep.name]
    config = replace(config, tracking=replace(config.tracking, group=group, name=name, tags=tags))
    summary = run_experiment(config, train_callbacks=[TuneReportCallback()], job_type="sweep_trial")
    tune.report({**summary["metrics"], FINISHED: 1})
