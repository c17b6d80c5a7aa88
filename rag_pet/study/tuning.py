"""Tune each trained method of a study before its cells run (`study.tune`): a Ray Tune sweep of the method's
first-seed main cell (`rag_pet.sweep`), trained on its training questions and scored on the `dev` split, whose best
values the method's cells then train with. A finished tuning is re-used while its trials' config and provenance
stand."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from rag_pet.config import TrackingConfig
from rag_pet.experiment_config import compose_experiment
from rag_pet.storage import write_json_atomic
from rag_pet.study.cell_checks import check_splits
from rag_pet.study.cells import Cell, plan_cells
from rag_pet.study.cleanup import drop_trial_weights
from rag_pet.study.names import MAIN
from rag_pet.study.provenance import provenance_changes, provenance_of
from rag_pet.study.records import DONE, TUNING_RECORD, read_record, tuning_dir
from rag_pet.study.spec import StudyConfig
from rag_pet.study.tune_space import TUNE_FIELD, as_tune_fields, tune_sweep
from rag_pet.sweep.plan import SweepPlan, plan_sweep
from rag_pet.sweep.space import overrides
from rag_pet.sweep.summary import FINISHED_STATUS
from rag_pet.sweep.tuner import run_sweep

logger = logging.getLogger(__name__)
DEV_SPLIT = "dev"
# What a trial changes in its main cell: scored on dev alone, without latency or forgetting, and trained from the
# base weights (a knowledge cell's weights do not exist yet; they are trained with the chosen values).
TRIAL_OVERRIDES = (
    f"data.eval_split={DEV_SPLIT}",
    "eval.extra_splits=[]",
    "eval.before_training=false",
    "eval.latency_questions=0",
    "eval.latency_via=in_process",
    "eval.forgetting_texts=0",
    "trainer.init_from=null",
    "trainer.launcher=ray",  # a trial reports to Tune through Ray Train, wherever the cell itself trains
)


@dataclass(frozen=True)
class MethodTuning:
    """One trained method's checked tuning sweep: the main cell it tunes and the plan of its trials."""

    cell: Cell
    plan: SweepPlan


def plan_tuning(study: StudyConfig, cells: list[Cell], study_dir: Path, config_dir: Path) -> list[MethodTuning]:
    """The tuning sweep of every trained method (over its first seed's main cell), each checked as `jobs.sweep`
    checks a sweep: before Ray starts, a bad space, metric or split is one error naming its field. None when
    `study.tune` is off."""
    if not study.tune.enabled:
        return []
    mains = [c for c in cells if c.kind == MAIN and c.method.trains and c.seed == study.seeds[0]]
    return [_plan(study, cell, study_dir, config_dir) for cell in mains]


def _plan(study: StudyConfig, cell: Cell, study_dir: Path, config_dir: Path) -> MethodTuning:
    sweep_dir = tuning_dir(study_dir, cell.method.name)
    trial_overrides = [*cell.overrides, *TRIAL_OVERRIDES, f"experiment_name={study.name}.tune.{sweep_dir.name}"]
    config = compose_experiment(config_dir, trial_overrides, "study.overrides")
    check_splits(config.data, [DEV_SPLIT])
    sweep = tune_sweep(study.tune, f"{study.name}-tune-{sweep_dir.name}", cell.config.trainer.lr, study.seeds[0])
    with as_tune_fields():
        plan = plan_sweep(replace(config, sweep=sweep, run_dir=str(sweep_dir)), trial_overrides, config_dir)
    return MethodTuning(cell, plan)


def tuned_cells(
    study: StudyConfig, tunings: list[MethodTuning], study_dir: Path, config_dir: Path, tracking: TrackingConfig
) -> list[Cell]:
    """Run (or re-use) every method's tuning, then the study's cells planned again, each tuned method's cells with
    the overrides of its chosen values after the study's own (so each cell's command re-runs exactly its config)."""
    chosen = {tuning.cell.method.name: tune_method(tuning)["overrides"] for tuning in tunings}
    extra = {name: [*study.method_overrides.get(name, []), *values] for name, values in chosen.items()}
    tuned = replace(study, method_overrides={**study.method_overrides, **extra})
    return plan_cells(tuned, study_dir, config_dir, tracking)


def tune_method(tuning: MethodTuning) -> dict:
    """The method's tuning record: re-used when it finished before for the same trials, else the sweep run (or
    resumed, when an earlier run of the same tuning stopped part-way) and recorded."""
    plan, method = tuning.plan, tuning.cell.method.name
    identity = _identity(tuning)
    record = read_record(plan.sweep_dir / TUNING_RECORD)
    if record is not None:
        reason = _stale_reason(record, identity)
        if reason is None and record.get("status") == DONE:
            logger.info("re-using the tuning of %s: %s", method, record["overrides"])
            return record
        if reason is not None:
            logger.info("tuning of %s runs again: %s", method, reason)
            shutil.rmtree(plan.sweep_dir, ignore_errors=True)
    write_json_atomic(plan.sweep_dir / TUNING_RECORD, {**identity, "status": "running"})
    started = time.monotonic()
    summary = run_sweep(plan)
    steps, seconds = tuning.cell.config.trainer.max_steps, time.monotonic() - started
    result = tuning_result(summary, plan.sweep.space, steps, seconds)
    # provenance as the trials end, as a cell records its own when it ends
    record = {**identity, "provenance": provenance_of(tuning.cell), **result, "status": DONE}
    write_json_atomic(plan.sweep_dir / TUNING_RECORD, record)
    drop_trial_weights(plan.sweep_dir, tuning.cell.config.trainer)
    logger.info("tuned %s: %s (%s=%s)", method, record["overrides"], plan.sweep.metric, record["best_metric"])
    return record


def _identity(tuning: MethodTuning) -> dict:
    """What a tuning's result depends on: the trials' overrides, the sweep, and the main cell's provenance."""
    plan = tuning.plan
    return {
        "method": tuning.cell.method.name,
        "cell": tuning.cell.id,
        "trial_overrides": list(plan.base_overrides),
        "sweep": json.loads(json.dumps(asdict(plan.sweep))),
        "provenance": provenance_of(tuning.cell),
    }


def _stale_reason(record: dict, identity: dict) -> str | None:
    if record.get("trial_overrides") != identity["trial_overrides"]:
        return "trial overrides changed"
    if record.get("sweep") != identity["sweep"]:
        return f"{TUNE_FIELD} changed"
    return "; ".join(provenance_changes(record.get("provenance"), identity["provenance"])) or None


def tuning_result(summary: dict, space: dict, steps: int, seconds: float) -> dict:
    """What the report reads of a finished sweep over `space` (trials of `steps` steps, `seconds` of wall time):
    the chosen values and their overrides, the best dev score, the trials and their cost (optimizer steps run,
    wall seconds, the finished trials' training FLOPs)."""
    best, trials = summary["best"], summary["trials"]
    finished = [trial for trial in trials if trial["status"] == FINISHED_STATUS]
    flops = [trial["metrics"].get("train_flops") for trial in finished]
    return {
        "metric": summary["metric"],
        "mode": summary["mode"],
        "space": json.loads(json.dumps(space)),
        "chosen": best["params"],
        "overrides": overrides(best["params"]),
        "best_trial": best["trial_id"],
        "best_metric": best["metric"],
        "trials": len(trials),
        "finished_trials": len(finished),
        "steps_per_trial": steps,
        "train_steps": sum(int(t["metrics"].get("train_steps", t["metrics"].get("step", 0))) for t in trials),
        "train_flops": sum(flops) if flops and None not in flops else None,
        "wall_seconds": seconds,
        "summary": str(Path(summary["sweep_dir"]) / "summary.json"),
    }
