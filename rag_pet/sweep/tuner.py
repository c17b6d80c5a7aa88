"""Run a checked sweep on Ray Tune: trials as function trainables, a searcher and an early-stopping scheduler from
the sweep config, as many trials at once as the cluster holds; then the summary and the best experiment."""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import replace

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import BasicVariantGenerator
from ray.util.placement_group import PlacementGroup, remove_placement_group

from rag_pet.config import dimensions
from rag_pet.console import console_logger, duration
from rag_pet.objectives import objective_of
from rag_pet.run_lock import run_directory_lock
from rag_pet.runtime import ensure_ray
from rag_pet.sweep.plan import SweepPlan
from rag_pet.sweep.space import tune_space
from rag_pet.sweep.summary import summarise
from rag_pet.sweep.trial import run_trial

logger = logging.getLogger(__name__)
TUNE_DIR = "tune"
# A trial's own actor only drives its Ray Train run, whose workers hold the trial's CPUs and GPUs. Tune refuses an
# empty resource request, so the driver takes a token byte of memory and leaves every CPU to Train.
TRIAL_DRIVER_RESOURCES = {"memory": 1}


def run_sweep(plan: SweepPlan) -> dict:
    """Run (or, when `<sweep_dir>/tune` holds an unfinished sweep, resume) the sweep; its summary."""
    # Trials stay in the sweep's working directory, where the experiment's relative paths (index storage, data)
    # mean what they mean to `python -m jobs.train`; Tune passes the setting on to the trial actors.
    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    with run_directory_lock(plan.sweep_dir):
        ensure_ray()
        trials_at_once, cpus_per_worker = trial_concurrency(plan)
        if plan.base.trainer.cpus_per_worker is None:
            plan = replace(plan, base_overrides=(*plan.base_overrides, f"trainer.cpus_per_worker={cpus_per_worker:g}"))
        threads = max(1, math.ceil(cpus_per_worker * plan.base.trainer.num_workers))
        group = f"sweep-{plan.sweep.name}-{plan.sweep_dir.name}"
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, plan=plan, group=group, threads=threads), TRIAL_DRIVER_RESOURCES
        )
        path = plan.sweep_dir / TUNE_DIR
        if tune.Tuner.can_restore(str(path)):
            logger.info("resuming the sweep in %s", path)
            tuner = tune.Tuner.restore(str(path), trainable, resume_unfinished=True, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=tune_space(plan.sweep.space),
                tune_config=_tune_config(plan, trials_at_once),
                run_config=tune.RunConfig(
                    name=TUNE_DIR,
                    storage_path=str(plan.sweep_dir),
                    failure_config=tune.FailureConfig(max_failures=plan.sweep.max_failures),
                    callbacks=[TrialLines(plan.sweep.metric)],
                ),
            )
        before = set(ray.util.placement_group_table())
        try:
            results = tuner.fit()
        finally:
            release_placement_groups(before)
        return summarise(plan, results, group)


class TrialLines(tune.Callback):
    """One console line per ended trial: its sweep metric (or that it failed) and the sweep's time so far."""

    def __init__(self, metric: str):
        self.metric, self.ended, self.started = metric, 0, time.monotonic()

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._line(trial, "ended")

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._line(trial, "failed")

    def _line(self, trial, status: str) -> None:
        self.ended += 1
        value = (trial.last_result or {}).get(self.metric)
        score = f"{self.metric} {value:.4g}" if isinstance(value, (int, float)) else f"no {self.metric}"
        elapsed = duration(time.monotonic() - self.started)
        console_logger().info("trial %d (%s) %s: %s; %s so far", self.ended, trial.trial_id, status, score, elapsed)


def release_placement_groups(before: set[str]) -> None:
    """Remove the placement groups this job created during the sweep that are still reserved once every trial ended.

    Ray Train reserves a run's workers in a placement group of the job, which Ray frees only when the job ends. When
    Tune stops a trial, Ray kills its Train controller with it, and Train's PlacementGroupCleaner frees only the
    placement group of a worker group that had finished starting; a controller that starts a worker group while it
    is being killed (it sees its workers die with it and retries) leaves one nothing frees (ray-project/ray#54305)."""
    job = ray.get_runtime_context().get_job_id()
    # A placement group's id ends with the id of the job that created it (`PlacementGroupID.of(job_id)`).
    left = [
        pg_id
        for pg_id, pg in ray.util.placement_group_table().items()
        if pg_id not in before and pg_id.endswith(job) and pg["state"] != "REMOVED"
    ]
    for pg_id in left:
        remove_placement_group(PlacementGroup(ray.PlacementGroupID.from_hex(pg_id)))
    if left:
        logger.warning("removed %d placement group(s) that stopped trials' Train runs left reserved", len(left))


def trial_concurrency(plan: SweepPlan) -> tuple[int, float]:
    """How many trials run at once (`sweep.max_concurrent_trials`, or as many as the cluster's CPUs and GPUs hold)
    and the CPUs each trial's workers get (`trainer.cpus_per_worker`, or an equal share of the cluster)."""
    trainer, reserved = plan.base.trainer, objective_of(plan.base).reserved_cpus(plan.base)
    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 1.0), resources.get("GPU", 0.0)
    trials = plan.sweep.max_concurrent_trials
    if trials is None:
        trials = max(1, int(cpus // (trainer.num_workers * (trainer.cpus_per_worker or 1.0) + reserved)))
        if trainer.use_gpu:
            trials = min(trials, max(1, int(gpus // trainer.num_workers)))
    trials = min(trials, _trial_count(plan))
    share = trainer.cpus_per_worker or max((cpus / trials - reserved) / trainer.num_workers, 0.1)
    return trials, share


def _trial_count(plan: SweepPlan) -> int:
    grid = math.prod(len(node["values"]) for node in dimensions(plan.sweep.space).values() if node["type"] == "grid")
    return plan.sweep.num_samples * grid


def reports_per_trial(plan: SweepPlan) -> int:
    """Results a trial that runs to the end gives Tune: one per train-loop report, then the evaluated one."""
    trainer = plan.base.trainer
    steps = range(1, trainer.max_steps + 1)
    reports = [s for s in steps if not (s % trainer.log_every and s % trainer.checkpoint_every and s < len(steps))]
    return len(reports) + 1


def _tune_config(plan: SweepPlan, trials_at_once: int) -> tune.TuneConfig:
    """Searcher and scheduler each with their own metric (Tune's `metric` stays unset): the searcher learns from the
    sweep's metric, ASHA stops on one reported while training, which may differ (loss, while optimising F1)."""
    sweep = plan.sweep
    if sweep.scheduler.type == "asha":
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            metric=sweep.early_stop_metric,
            mode=sweep.early_stop_mode,
            max_t=reports_per_trial(plan),
            grace_period=sweep.scheduler.grace_period,
            reduction_factor=sweep.scheduler.reduction_factor,
        )
    else:
        scheduler = FIFOScheduler()
    searcher = _searcher(plan, trials_at_once)
    return tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=sweep.num_samples)


def _searcher(plan: SweepPlan, trials_at_once: int):
    """Random or grid points (Tune's variant generator), or Optuna's TPE; either holds `trials_at_once` running.

    The limit is set on the searcher itself: Tune ignores `TuneConfig.max_concurrent_trials` for a variant
    generator passed in as the search algorithm."""
    sweep = plan.sweep
    if sweep.search != "optuna":
        return BasicVariantGenerator(random_state=sweep.seed, max_concurrent=trials_at_once)
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    return ConcurrencyLimiter(OptunaSearch(metric=sweep.metric, mode=sweep.mode, seed=sweep.seed), trials_at_once)
