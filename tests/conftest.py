"""Shared fixtures: Hydra composition of the real `conf/` tree, and one local Ray instance per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from rag_pet.config import RagPetConfig, register_configs, to_config
from rag_pet.runtime import ensure_ray

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_SILENT", "true")

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def compose_config(overrides: list[str], run_dir: Path | None = None) -> RagPetConfig:
    """Compose `conf/config.yaml` with overrides, as the jobs do, and validate it."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*overrides, f"run_dir={run_dir or '/tmp/rag_pet_test'}"])
    return to_config(cfg)


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
