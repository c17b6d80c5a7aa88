"""Ray Tune sweeps end to end on the tiny model: ASHA stops trials early, each trial is an offline W&B run of the
sweep's group, Train resources come back, the best trial's yaml trains as is; bad sweeps fail before any trial."""

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra.core.global_hydra import GlobalHydra

from rag_pet.config import to_config
from rag_pet.config.compose import compose
from rag_pet.console import CONSOLE
from rag_pet.errors import ConfigError
from rag_pet.sweep.plan import experiment_overrides, plan_sweep
from rag_pet.sweep.space import override_value, overrides
from rag_pet.sweep.summary import FINISHED_STATUS, STOPPED
from rag_pet.sweep.tuner import TrialLines, release_placement_groups, run_sweep
from tests.conftest import CONF_DIR, jobs_in_background

ROOT = CONF_DIR.parent
SMOKE = ["sweep=smoke", "debug=tiny", "trainer.max_steps=6", "trainer.cpus_per_worker=1"]


def sweep_job(tmp_path: Path, command_line: list[str]):
    """The sweep job's config as `python -m jobs.sweep <command_line>` composes it, writing under `tmp_path`."""
    GlobalHydra.instance().clear()
    return to_config(compose(CONF_DIR, [*command_line, f"run_dir={tmp_path / 'sweep'}"], "sweep_job"))


def train_placement_groups_alive() -> list[str]:
    import ray

    return [pg_id for pg_id, pg in ray.util.placement_group_table().items() if pg["state"] != "REMOVED"]


# A whole 4-trial sweep (about 2 minutes on 2 cores) runs with -m slow; the default suite checks the plan, every bad
# sweep and the placement-group release.
@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
def test_an_asha_sweep_stops_trials_early_tracks_each_trial_and_writes_a_best_experiment_that_trains(tmp_path, caplog):
    import ray

    caplog.set_level(logging.INFO, logger=CONSOLE)
    command_line = [*SMOKE, "tracking=wandb_offline"]
    summary = run_sweep(plan_sweep(sweep_job(tmp_path, command_line), command_line, CONF_DIR))
    sweep_dir = tmp_path / "sweep"

    trials = summary["trials"]
    assert len(trials) == 4
    lines = [r.getMessage() for r in caplog.records if r.name == CONSOLE and r.getMessage().startswith("trial ")]
    assert [line.split()[1] for line in lines] == ["1", "2", "3", "4"]  # a console line per ended trial
    statuses = [t["status"] for t in trials]
    assert STOPPED in statuses and FINISHED_STATUS in statuses
    assert statuses == sorted(statuses, key=[FINISHED_STATUS, STOPPED].index)  # finished first, best first
    finished = [t for t in trials if t["status"] == FINISHED_STATUS]
    assert [t["metric"] for t in finished] == sorted((t["metric"] for t in finished), reverse=True)
    for trial in trials:
        stopped = trial["status"] == STOPPED
        assert ("f1" in trial["metrics"]) is not stopped  # a stopped trial never evaluated
        assert trial["reports"] < 4 if stopped else trial["reports"] == 4  # 3 train-loop reports + the evaluated one
        assert trial["metrics"]["loss"] > 0
    assert json.loads((sweep_dir / "summary.json").read_text())["trials"] == trials
    assert len((sweep_dir / "summary.csv").read_text().splitlines()) == 5

    # one offline W&B run per trial, in the sweep's group, named by experiment, method and trial
    runs = sorted(sweep_dir.glob("trials/*/wandb/offline-run-*"))
    assert len(runs) == 4
    for trial in trials:
        (run,) = Path(trial["run_dir"]).glob("wandb/offline-run-*")
        records = next(run.glob("run-*.wandb")).read_bytes()
        for key in (summary["group"], f"default-lora-{trial['trial_id']}", "smoke", "train/loss", "trainer"):
            assert key.encode() in records, key
        if trial["status"] == FINISHED_STATUS:  # the adapter as a model artifact
            assert b"default-lora" in records and b"adapter_model.safetensors" in records

    # early-stopped trials gave their Train placement groups back
    deadline = time.monotonic() + 60
    while train_placement_groups_alive() and time.monotonic() < deadline:
        time.sleep(1)
    assert train_placement_groups_alive() == []
    assert ray.available_resources().get("CPU") == ray.cluster_resources().get("CPU")

    # the best experiment runs as is with jobs.train, and trains at the best trial's learning rate
    best = summary["best"]
    assert best["trial_id"] == finished[0]["trial_id"]
    run_dir = tmp_path / "best_run"
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    command = ["-m", "jobs.train", "--config-dir", str(sweep_dir), "experiment=best", f"hydra.run.dir={run_dir}"]
    done = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["trainer"]["lr"] == best["params"]["trainer.lr"]
    assert config["experiment_name"] == "default_best" and config["trainer"]["max_steps"] == 6
    assert json.loads((run_dir / "results.json").read_text())["metrics"]["train_steps"] == 6


@pytest.mark.usefixtures("ray_local")
def test_a_sweep_removes_only_the_placement_groups_its_job_created_while_trials_ran():
    import ray

    earlier = ray.util.placement_group([{"CPU": 0.01}])
    ray.get(earlier.ready())
    before = set(ray.util.placement_group_table())
    left = ray.util.placement_group([{"CPU": 0.01}])
    ray.get(left.ready())

    release_placement_groups(before)
    assert ray.util.placement_group_table(left)["state"] == "REMOVED"
    assert ray.util.placement_group_table(earlier)["state"] == "CREATED"
    ray.util.remove_placement_group(earlier)


BAD_SWEEPS = {
    "unknown-type": (["sweep.space.trainer.lr.type=logunif"], {}, "sweep.space.trainer.lr.type='logunif'"),
    "missing-key": (["+sweep.space.trainer.lrr={type: grid, values: [1, 2]}"], {}, "sweep.space.trainer.lrr="),
    "unreported-metric": (["sweep.metric=bleu"], {}, "sweep.metric='bleu'"),
    "asha-on-a-final-metric": (["sweep.scheduler.metric=exact_match"], {}, "sweep.scheduler.metric='exact_match'"),
    "unreachable-cluster": ([], {"RAY_ADDRESS": "127.0.0.1:9"}, "RAY_ADDRESS='127.0.0.1:9'"),
}


@pytest.fixture(scope="module")
def bad_sweep_jobs(tmp_path_factory):
    """`python -m jobs.sweep` for each bad sweep, started together (`jobs_in_background`): by name, the future and
    the folder the job was pointed at."""
    folders = {name: tmp_path_factory.mktemp(name) for name in BAD_SWEEPS}
    commands = {
        name: (
            [sys.executable, "-m", "jobs.sweep", *SMOKE, *command_line, f"hydra.run.dir={folders[name] / 'sweep'}"],
            env,
        )
        for name, (command_line, env, _) in BAD_SWEEPS.items()
    }
    with jobs_in_background(commands, cwd=ROOT, timeout=300) as started:
        yield {name: (started[name], folders[name]) for name in BAD_SWEEPS}


@pytest.mark.parametrize("name", list(BAD_SWEEPS))
def test_a_bad_sweep_is_one_error_line_before_any_trial(bad_sweep_jobs, name):
    future, folder = bad_sweep_jobs[name]
    done, field = future.result(), BAD_SWEEPS[name][2]

    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and field in lines[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert not (folder / "sweep" / "tune").exists()  # no trial started


@pytest.mark.slow  # two trials more, about a minute
@pytest.mark.usefixtures("ray_local")
def test_an_optuna_sweep_learns_from_a_metric_reported_while_training(tmp_path):
    line = ["sweep=lora_lr", "debug=tiny", "trainer.cpus_per_worker=1", "sweep.search=optuna", "sweep.num_samples=2"]
    line += ["sweep.metric=loss", "sweep.mode=min", "sweep.scheduler.type=fifo", "sweep.max_concurrent_trials=1"]
    summary = run_sweep(plan_sweep(sweep_job(tmp_path, line), line, CONF_DIR))

    assert [t["status"] for t in summary["trials"]] == [FINISHED_STATUS, FINISHED_STATUS]
    losses = [t["metric"] for t in summary["trials"]]
    assert losses == sorted(losses) and summary["best"]["metric"] == losses[0]
    assert len({t["params"]["trainer.lr"] for t in summary["trials"]}) == 2  # Optuna drew two points
    with pytest.raises(ConfigError, match="sweep.search='optuna'.*reported only after training"):
        plan_sweep(sweep_job(tmp_path, ["sweep=lora_lr", "debug=tiny", "sweep.search=optuna"]), [], CONF_DIR)


def test_a_console_line_per_ended_trial_gives_its_metric_or_that_it_failed(caplog):
    caplog.set_level(logging.INFO, logger=CONSOLE)
    lines = TrialLines("f1")
    lines.on_trial_complete(3, [], SimpleNamespace(trial_id="a1", last_result={"f1": 0.4375}))
    lines.on_trial_error(4, [], SimpleNamespace(trial_id="b2", last_result={}))
    shown = [record.getMessage() for record in caplog.records if record.name == CONSOLE]
    assert shown[0].startswith("trial 1 (a1) ended: f1 0.4375; ")
    assert shown[1].startswith("trial 2 (b2) failed: no f1; ")


SWEEPS = sorted(path.stem for path in (CONF_DIR / "sweep").glob("*.yaml"))
EXPERIMENT_OF = {"rag_top_k": "hybrid_rag_lora"}


@pytest.mark.parametrize("name", SWEEPS)
def test_every_shipped_sweep_composes_and_passes_its_checks(tmp_path, name):
    line = [f"sweep={name}", f"experiment={EXPERIMENT_OF.get(name, 'quickstart')}", "debug=tiny"]
    plan = plan_sweep(sweep_job(tmp_path, line), line, CONF_DIR)
    assert plan.sweep.name == name and plan.base_overrides == tuple(line[1:])


def test_plan_checks_group_choices_grid_and_every_extreme_value(tmp_path):
    job = sweep_job(tmp_path, ["sweep=pet_method", "debug=tiny"])
    plan = plan_sweep(job, ["sweep=pet_method", "debug=tiny"], CONF_DIR)
    config = plan.trial_config({"peft": "ia3", "trainer.lr": 1e-3}, tmp_path / "t")
    assert config.peft.method == "ia3" and config.trainer.lr == 1e-3 and config.trainer.max_relaunches == 0

    with pytest.raises(ConfigError, match=r"sweep.space.peft.values='lora2'.*options of config group peft"):
        plan_sweep(sweep_job(tmp_path, ["sweep=pet_method", "sweep.space.peft.values=[lora,lora2]"]), [], CONF_DIR)
    with pytest.raises(ConfigError, match=r"sweep.space.trainer.lr.type='loguniform'.*grid"):
        plan_sweep(sweep_job(tmp_path, ["sweep=lora_lr", "sweep.search=grid"]), [], CONF_DIR)
    with pytest.raises(ConfigError, match=r"trainer.lr=-1.0"):  # an extreme value the experiment refuses
        line = ["sweep=lora_lr", "debug=tiny", "sweep.space.trainer.lr={type: uniform, lower: -1.0, upper: 0.01}"]
        plan_sweep(sweep_job(tmp_path, line), line, CONF_DIR)


def test_overrides_read_back_as_the_sampled_values():
    point = {"trainer.lr": 3e-05, "peft": "ia3", "peft.target_modules": ["q_proj", "v_proj"], "rag.k": 4}
    assert overrides(point) == ["trainer.lr=3e-05", "peft=ia3", "peft.target_modules=[q_proj,v_proj]", "rag.k=4"]
    assert override_value("two words") == "'two words'" and override_value(None) == "null"
    line = ["sweep=smoke", "sweep.num_samples=2", "+sweep.x=1", "hydra.run.dir=x", "debug=tiny", "trainer.lr=1"]
    assert experiment_overrides(line) == ("debug=tiny", "trainer.lr=1")
