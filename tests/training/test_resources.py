"""Training that cannot be placed is refused (or waited for, for a stated time) before Ray Train starts."""

import pytest

from rag_pet.errors import ConfigError
from rag_pet.training.resources import WorkerRequest, shortfall, wait_for_resources, worker_slots
from tests.conftest import train

TWO_CPUS = [{"CPU": 2.0}]


def test_worker_slots_count_whole_workers_per_node():
    assert worker_slots([{"CPU": 2.0}, {"CPU": 3.0}], cpus=1.5, gpus=0) == 3
    assert worker_slots([{"CPU": 1.0}], cpus=0.25, gpus=0) == 4
    assert worker_slots([{"CPU": 16.0, "GPU": 2.0}, {"CPU": 16.0}], cpus=4, gpus=1) == 2


def test_what_does_not_fit_is_named():
    too_many = shortfall(WorkerRequest(64, 1.0, 0.0), TWO_CPUS)
    assert too_many.field == "trainer.num_workers" and "at most 2" in too_many.allowed
    no_gpu = shortfall(WorkerRequest(1, 1.0, 1.0), TWO_CPUS)
    assert no_gpu.field == "trainer.use_gpu" and "0 GPUs" in no_gpu.allowed
    shards = shortfall(WorkerRequest(2, 1.0, 0.0, reserved_cpus=0.5), TWO_CPUS)
    assert shards.field == "trainer.cpus_per_worker"
    assert shortfall(WorkerRequest(2, 0.75, 0.0, reserved_cpus=0.5), TWO_CPUS) is None


def test_an_autoscaling_cluster_is_waited_for_as_long_as_configured():
    grown = iter([TWO_CPUS, TWO_CPUS, [{"CPU": 2.0}, {"CPU": 2.0}]])
    naps = []
    wait_for_resources(WorkerRequest(4, 1.0, 0.0), lambda: next(grown), wait_s=60, sleep=naps.append)
    assert len(naps) == 2
    with pytest.raises(ConfigError, match=r"trainer.num_workers=4 .* waited 0.01 s \(trainer.resource_wait_s\)"):
        wait_for_resources(WorkerRequest(4, 1.0, 0.0), lambda: TWO_CPUS, wait_s=0.01, sleep=lambda _: None)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["trainer.num_workers=64", "trainer.batch_size=1", "data.max_train_examples=64"], "trainer.num_workers=64"),
        (["trainer.use_gpu=true"], "trainer.use_gpu=True"),
    ],
)
def test_an_impossible_request_fails_at_once_instead_of_waiting_forever(ray_local, tiny_config, overrides, field):
    with pytest.raises(ConfigError, match=field):
        train(tiny_config(*overrides))
