"""Chaos, bounded: a Ray Train worker SIGKILLed twice in one run; the run finishes with the uninterrupted losses."""

import pytest

from tests.conftest import compose_config, train
from tests.training.test_fault_tolerance import RUN, WORKER, train_with_kills


@pytest.mark.slow
def test_a_worker_killed_twice_finishes_with_the_losses_of_an_uninterrupted_run(ray_local, tmp_path):
    reference = train(compose_config([*RUN, "trainer.launcher=local"], run_dir=tmp_path / "reference"))
    result, kills = train_with_kills(compose_config(list(RUN), run_dir=tmp_path / "killed"), WORKER, [2, 4])

    state = result.state
    print(f"\ntrain chaos: workers {kills} killed; resumed at steps {state.resumed_at}; {state.step} steps")
    assert state.step == 6 and state.resumed_at == [2, 4]
    losses = [record["loss"] for record in state.history]
    assert losses == pytest.approx([record["loss"] for record in reference.state.history], rel=1e-4)
