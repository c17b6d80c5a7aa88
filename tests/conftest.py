"""Shared fixtures: Hydra composition of the real `conf/` tree, and one local Ray instance per session."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hydra.core.global_hydra import GlobalHydra

from rag_pet.config import RagPetConfig
from rag_pet.experiment_config import compose_experiment
from rag_pet.runtime import ensure_ray

if TYPE_CHECKING:
    from rag_pet.training.launcher import TrainingResult

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_SILENT", "true")
# Ray Train's controller polls its workers every 2 s by default, so a tiny run idles seconds before each step of its
# life cycle is seen; polled 8 times a second, a 4-step run takes about 9 s instead of 15 on 2 cores. Set before
# `ray_local` starts Ray, its controllers and the jobs the tests start as subprocesses inherit it.
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.125")

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def compose_config(overrides: list[str], run_dir: Path | None = None) -> RagPetConfig:
    """Compose `conf/config.yaml` with overrides, as the jobs do, and validate it."""
    GlobalHydra.instance().clear()
    return compose_experiment(CONF_DIR, [*overrides, f"run_dir={run_dir or '/tmp/rag_pet_test'}"])


def train(config: RagPetConfig, callbacks: Sequence[object] = ()) -> TrainingResult:
    """`launch_training` of `config` with its own objective, as a job launches it."""
    from rag_pet.objectives import objective_of
    from rag_pet.training.launcher import launch_training

    return launch_training(config, objective_of(config), callbacks)


@contextmanager
def jobs_in_background(
    commands: dict[str, tuple[list[str], dict[str, str]]], cwd: Path, timeout: float, at_once: int = 3
) -> Iterator[dict[str, Future]]:
    """`subprocess.run` of each `(argv, extra environment)`, `at_once` at a time on background threads: short jobs
    that spend their seconds importing torch on one core overlap instead of queueing. Yields each job's future
    (a `CompletedProcess`) by key; leaving the block waits for all of them."""
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        yield {
            key: pool.submit(
                subprocess.run,
                argv,
                cwd=cwd,
                env={**os.environ, **extra},
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            for key, (argv, extra) in commands.items()
        }


@pytest.fixture
def tiny_config(tmp_path):
    """Factory: the debug=tiny config with extra overrides, writing into a fresh tmp dir."""

    def make(*overrides: str) -> RagPetConfig:
        return compose_config(["debug=tiny", *overrides], run_dir=tmp_path / "run")

    return make


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray instance; 4 logical CPUs so 2 train workers and the controller fit on 2 cores."""
    import ray

    ensure_ray(num_cpus=4, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_study_run(ray_local, tmp_path_factory):
    """One small study (`tests.study.test_study.small_study`) run once for the session: its config (with
    `study_dir`) and the folder of its index. Tests read its cells; none may change them."""
    from rag_pet.study.flow import run_study
    from tests.study.test_study import small_study

    root = tmp_path_factory.mktemp("tiny_study")
    compare = small_study(root, root / "study")
    summary = run_study(compare, CONF_DIR)
    assert summary["failed"] == [], summary["failed"]
    return compare, root
