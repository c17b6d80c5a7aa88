"""Check a sweep before any trial starts: every key of its space exists, every extreme value composes into a valid
experiment, and the experiment reports the metrics the sweep optimises and stops on."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rag_pet.config import RagPetConfig, SweepConfig, dimensions, to_dict
from rag_pet.errors import ConfigError
from rag_pet.experiment import reported_metrics
from rag_pet.experiment_config import compose_experiment
from rag_pet.sweep.space import corner_points, overrides

LOCAL_CONFIG_DIR = Path(__file__).resolve().parents[2] / "conf"
# Overrides of the sweep job's command line that belong to the sweep, not to the experiment its trials run.
SWEEP_KEYS = ("sweep", "hydra")


@dataclass(frozen=True)
class SweepPlan:
    """A checked sweep: what each trial composes (`base_overrides` + its point + its run dir) and where it writes."""

    sweep: SweepConfig
    base: RagPetConfig
    base_overrides: tuple[str, ...]
    sweep_dir: Path
    config_dir: Path

    def trial_overrides(self, point: dict[str, Any], run_dir: Path) -> list[str]:
        """The overrides of one trial: the experiment's, the sampled point's, then where the trial writes.

        A trial does not relaunch a failed Train controller itself: when ASHA stops the trial, its controller dies
        with it, and a relaunch would start training again inside the stopping trial. Tune retries failed trials
        (`sweep.max_failures`)."""
        return [*self.base_overrides, *overrides(point), f"run_dir={run_dir}", "trainer.max_relaunches=0"]

    def trial_config(self, point: dict[str, Any], run_dir: Path) -> RagPetConfig:
        """The validated experiment of one trial, as `python -m jobs.train` composes it, from the `conf/` beside the
        code this process runs: a cluster node unpacks the job's working_dir elsewhere than the driver's node."""
        config_dir = LOCAL_CONFIG_DIR if LOCAL_CONFIG_DIR.is_dir() else self.config_dir
        return compose_experiment(config_dir, self.trial_overrides(point, run_dir), "sweep.space")


def experiment_overrides(command_line: list[str]) -> tuple[str, ...]:
    """The overrides of `python -m jobs.sweep ...` that configure the experiment (all but `sweep...`/`hydra...`)."""
    return tuple(o for o in command_line if o.lstrip("+~").split("=", 1)[0].split(".", 1)[0] not in SWEEP_KEYS)


def plan_sweep(job: RagPetConfig, command_line: list[str], config_dir: Path) -> SweepPlan:
    """Check `job.sweep` against the experiment the rest of `job` configures; the plan of its trials."""
    if job.sweep is None:
        raise ConfigError("sweep", None, "a sweep from conf/sweep/ (python -m jobs.sweep sweep=<name>)")
    sweep, base = job.sweep, replace(job, sweep=None)
    if base.trainer.launcher != "ray":
        raise ConfigError("trainer.launcher", base.trainer.launcher, "ray: each trial is a Ray Train run")
    plan = SweepPlan(
        sweep, base, experiment_overrides(command_line), Path(job.run_dir).expanduser().resolve(), Path(config_dir)
    )
    _check_search(sweep)
    _check_keys(sweep, base, Path(config_dir))
    probe_dir = plan.sweep_dir / "trials" / "check"
    corners = [plan.trial_config(point, probe_dir) for point in corner_points(sweep.space)]
    for config in corners:
        _check_metrics(sweep, config)
    return plan


def _check_search(sweep: SweepConfig) -> None:
    """Grid search enumerates lists only; Optuna samples, so it takes no grid and needs optuna installed."""
    kinds = {key: node["type"] for key, node in dimensions(sweep.space).items()}
    if sweep.search == "grid":
        for key, kind in kinds.items():
            if kind != "grid":
                raise ConfigError(f"sweep.space.{key}.type", kind, "grid (sweep.search=grid tries every combination)")
    if sweep.search == "optuna":
        if importlib.util.find_spec("optuna") is None:
            raise ConfigError("sweep.search", "optuna", "random or grid; or install optuna (pip install optuna)")
        for key, kind in kinds.items():
            if kind == "grid":
                raise ConfigError(f"sweep.space.{key}.type", kind, "choice (Optuna samples; it does not enumerate)")


def _check_keys(sweep: SweepConfig, base: RagPetConfig, config_dir: Path) -> None:
    """Refuse a dimension whose key the experiment config does not have (a top-level key may name a group)."""
    values = to_dict(base)
    for key, node in dimensions(sweep.space).items():
        if "." not in key and (config_dir / key).is_dir():
            options = sorted(p.stem for p in (config_dir / key).glob("*.yaml"))
            for value in node.get("values", [None]):
                if value not in options:
                    raise ConfigError(f"sweep.space.{key}.values", value, f"options of config group {key}: {options}")
            continue
        found: Any = values
        for part in key.split("."):
            if not isinstance(found, dict) or part not in found:
                raise ConfigError(f"sweep.space.{key}", node, "a key of the experiment config (trainer.lr, ...)")
            found = found[part]


def _check_metrics(sweep: SweepConfig, config: RagPetConfig) -> None:
    """Refuse a metric the experiment never reports, and early stopping on one that only arrives after training."""
    during, after = reported_metrics(config)
    if sweep.metric not in after:
        raise ConfigError("sweep.metric", sweep.metric, f"a metric this experiment reports: {', '.join(after)}")
    if sweep.scheduler.type == "asha":
        metric = sweep.early_stop_metric
        if metric not in during:
            where = "sweep.scheduler.metric" if sweep.scheduler.metric else "sweep.metric"
            raise ConfigError(
                where,
                metric,
                f"a metric reported while training ({', '.join(during)}): ASHA stops trials before they end;"
                " or sweep.scheduler.type=fifo",
            )
    if sweep.search == "optuna" and sweep.metric not in during:
        raise ConfigError(
            "sweep.search",
            "optuna",
            f"random or grid: Optuna reads {sweep.metric} from every report, and it is reported only after training",
        )
