"""Sweep an experiment's hyperparameters on Ray Tune: `python -m jobs.sweep sweep=lora_lr experiment=quickstart`."""

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from rag_pet.cli import exit_if_failed, hydra_job, run_job
from rag_pet.config import RagPetConfig, register_configs
from rag_pet.console import show

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"
register_configs()


def sweep(job: RagPetConfig, command_line: list[str]) -> dict:
    """Check the sweep before anything starts, run it, print the summary; the summary."""
    from rag_pet.sweep.plan import plan_sweep
    from rag_pet.sweep.summary import FAILED, format_sweep_summary
    from rag_pet.sweep.tuner import run_sweep

    summary = run_sweep(plan_sweep(job, command_line, CONFIG_DIR))
    show(format_sweep_summary(summary))
    failed = [trial for trial in summary["trials"] if trial["status"] == FAILED]
    exit_if_failed(len(failed), len(summary["trials"]), "sweep trials")
    return summary


@hydra_job(config_name="sweep_job")
def main(cfg: DictConfig) -> dict:
    command_line = list(HydraConfig.get().overrides.task)
    return run_job(lambda job: sweep(job, command_line), cfg)


if __name__ == "__main__":
    main()
