"""A Ray Train worker process killed mid-run (SIGKILL): the run restarts from its latest checkpoint and finishes."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from rag_pet.training.launcher import launch_training
from tests.conftest import compose_config

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


def registered_steps(storage: Path) -> set[int]:
    """Steps of the checkpoints Ray Train's controller has committed (what a restarted worker group resumes from)."""
    try:
        snapshot = json.loads((storage / "train" / "checkpoint_manager_snapshot.json").read_text())
    except (OSError, ValueError):  # not written yet, or being replaced
        return set()
    return {result["metrics"]["step"] for result in snapshot["checkpoint_results"]}


def train_worker_pids() -> list[int]:
    """Ray Train workers of this test session's Ray instance (its raylet is our child), not of other jobs."""
    return [
        process.pid
        for process in psutil.process_iter(["cmdline"])
        if (process.info["cmdline"] or [""])[0].startswith("ray::RayTrainWorker")
        and any(parent.pid == os.getpid() for parent in process.parents())
    ]


def test_killed_worker_resumes_from_the_latest_checkpoint(ray_local, tmp_path):
    reference = launch_training(compose_config([*RUN, "trainer.launcher=local"], run_dir=tmp_path / "reference"))

    config = compose_config(list(RUN), run_dir=tmp_path / "killed")
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(result=launch_training(config)))
    runner.start()
    killed = None
    while runner.is_alive() and killed is None:
        if 4 in registered_steps(tmp_path / "killed" / "checkpoints"):
            (killed,) = train_worker_pids()
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    runner.join(timeout=600)

    assert killed is not None, "the run ended before the step-4 checkpoint was registered"
    assert not psutil.pid_exists(killed) or psutil.Process(killed).status() == psutil.STATUS_ZOMBIE
    state = outcome["result"].state
    assert state.step == 6
    assert state.resumed_at == [4]  # a new worker process restored the step-4 checkpoint and trained 5 and 6
    assert [record["step"] for record in state.history] == list(range(1, 7))
    losses = [record["loss"] for record in state.history]
    assert losses == pytest.approx([record["loss"] for record in reference.state.history], rel=1e-4)


def controller_pids() -> list[int]:
    """Ray Train controllers of this test session's Ray instance."""
    return [
        process.pid
        for process in psutil.process_iter(["cmdline"])
        if (process.info["cmdline"] or [""])[0].startswith("ray::TrainController")
        and any(parent.pid == os.getpid() for parent in process.parents())
    ]


@pytest.mark.slow
def test_a_killed_controller_is_relaunched_from_the_latest_checkpoint(ray_local, tmp_path):
    config = compose_config([*RUN, "trainer.max_relaunches=1"], run_dir=tmp_path / "controller")
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(result=launch_training(config)))
    runner.start()
    killed = None
    while runner.is_alive() and killed is None:
        if 4 in registered_steps(tmp_path / "controller" / "checkpoints"):
            (killed,) = controller_pids()
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    runner.join(timeout=600)

    assert killed is not None, "the run ended before the step-4 checkpoint was registered"
    state = outcome["result"].state
    assert state.step == 6 and state.resumed_at == [4]
