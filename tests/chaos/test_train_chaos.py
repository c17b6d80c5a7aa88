"""Chaos, bounded: a Ray Train worker SIGKILLed twice in one run; the run finishes with the uninterrupted losses."""

import os
import signal
import threading
import time

import pytest

from rag_pet.training.launcher import launch_training
from tests.conftest import compose_config
from tests.training.test_fault_tolerance import RUN, registered_steps, train_worker_pids


@pytest.mark.slow
def test_a_worker_killed_twice_finishes_with_the_losses_of_an_uninterrupted_run(ray_local, tmp_path):
    reference = launch_training(compose_config([*RUN, "trainer.launcher=local"], run_dir=tmp_path / "reference"))
    config = compose_config(list(RUN), run_dir=tmp_path / "killed")
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(result=launch_training(config)))
    runner.start()
    kills: list[int] = []
    while runner.is_alive() and len(kills) < 2:
        due = 2 if not kills else 4  # after the step-2 checkpoint, then after the step-4 one
        workers = train_worker_pids()
        if due in registered_steps(tmp_path / "killed" / "checkpoints") and len(workers) == 1:
            os.kill(workers[0], signal.SIGKILL)
            kills.append(workers[0])
        time.sleep(0.02)
    runner.join(timeout=900)

    assert len(kills) == 2, "the run ended before both kills"
    state = outcome["result"].state
    print(f"\ntrain chaos: workers {kills} killed; resumed at steps {state.resumed_at}; {state.step} steps")
    assert state.step == 6 and state.resumed_at == [2, 4]
    losses = [record["loss"] for record in state.history]
    assert losses == pytest.approx([record["loss"] for record in reference.state.history], rel=1e-4)
