"""A Ray Train worker process killed mid-run (SIGKILL): the run restarts from its latest checkpoint and finishes."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from rag_pet.training.launcher import TrainingResult
from tests.conftest import compose_config, train

# full fine-tuning of a 4-layer model: ~0.7 s a step on 2 cores, so the kill lands before the run ends
RUN = (
    "debug=tiny",
    "peft=full",
    "model.hidden_size=256",
    "model.num_layers=4",
    "data.max_train_examples=16",
    "trainer.batch_size=8",
    "trainer.lr=1e-3",
    "trainer.max_steps=6",
    "trainer.checkpoint_every=2",
    "trainer.log_every=1",
    "trainer.cpus_per_worker=1",
    "trainer.max_failures=2",
)


WORKER = "ray::RayTrainWorker"


def registered_steps(storage: Path) -> set[int]:
    """Steps of the checkpoints Ray Train's controller has committed (what a restarted worker group resumes from)."""
    try:
        snapshot = json.loads((storage / "train" / "checkpoint_manager_snapshot.json").read_text())
    except (OSError, ValueError):  # not written yet, or being replaced
        return set()
    return {result["metrics"]["step"] for result in snapshot["checkpoint_results"]}


def session_processes(command: str, since: float) -> list[int]:
    """Processes of this test session's Ray instance (its raylet is our child) started at `since` or later whose
    command starts with `command`: other jobs' Ray instances, and earlier tests' processes of this one, are left
    alone."""
    return [
        process.pid
        for process in psutil.process_iter(["cmdline", "create_time"])
        if (process.info["cmdline"] or [""])[0].startswith(command)
        and process.info["create_time"] >= since
        and any(parent.pid == os.getpid() for parent in process.parents())
    ]


def train_with_kills(config, command: str, after_steps: list[int]) -> tuple[TrainingResult, list[int]]:
    """`launch_training(config)` while the session's one `command` process is SIGKILLed each time the next step of
    `after_steps` has a registered checkpoint; the result and the killed pids."""
    storage = Path(config.run_dir) / "checkpoints"
    started = time.time() - 1  # process start times are rounded
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(result=train(config)))
    runner.start()
    killed: list[int] = []
    while runner.is_alive() and len(killed) < len(after_steps):
        pids = [pid for pid in session_processes(command, started) if pid not in killed]
        if after_steps[len(killed)] in registered_steps(storage) and len(pids) == 1:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
        time.sleep(0.02)
    runner.join(timeout=900)
    assert len(killed) == len(after_steps), f"the run ended before a kill after each of steps {after_steps}"
    return outcome["result"], killed


@pytest.mark.slow  # 25 s; the default suite resumes from checkpoints in tests/training/test_loop.py
def test_killed_worker_resumes_from_the_latest_checkpoint(ray_local, tmp_path):
    reference = train(compose_config([*RUN, "trainer.launcher=local"], run_dir=tmp_path / "reference"))
    result, (killed,) = train_with_kills(compose_config(list(RUN), run_dir=tmp_path / "killed"), WORKER, [4])

    assert not psutil.pid_exists(killed) or psutil.Process(killed).status() == psutil.STATUS_ZOMBIE
    state = result.state
    assert state.step == 6
    assert state.resumed_at == [4]  # a new worker process restored the step-4 checkpoint and trained 5 and 6
    assert [record["step"] for record in state.history] == list(range(1, 7))
    losses = [record["loss"] for record in state.history]
    assert losses == pytest.approx([record["loss"] for record in reference.state.history], rel=1e-4)


@pytest.mark.slow
def test_a_killed_controller_is_relaunched_from_the_latest_checkpoint(ray_local, tmp_path):
    config = compose_config([*RUN, "trainer.max_relaunches=1"], run_dir=tmp_path / "controller")
    before = live_placement_groups(ray_local)  # earlier tests' runs in this Ray instance
    result, _ = train_with_kills(config, "ray::TrainController", [4])
    assert result.state.step == 6 and result.state.resumed_at == [4]
    # the killed controller's placement group is removed by Ray Train's cleaner, which asks this instance's state API
    deadline = time.monotonic() + 120
    while live_placement_groups(ray_local) - before and time.monotonic() < deadline:
        time.sleep(1)
    assert live_placement_groups(ray_local) - before == set()


def live_placement_groups(ray) -> set[str]:
    return {pg_id for pg_id, pg in ray.util.placement_group_table().items() if pg["state"] != "REMOVED"}
