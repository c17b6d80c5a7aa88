"""Compare adaptation methods under one budget: `python -m jobs.compare [study=smoke] [study.seeds=[0,1]]`."""

from pathlib import Path

from omegaconf import DictConfig

from rag_pet.cli import exit_if_failed, hydra_job, run_job
from rag_pet.config import register_configs
from rag_pet.console import show
from rag_pet.study import CompareConfig, register_study_configs

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"
register_configs()
register_study_configs()


@hydra_job(config_name="compare")
def main(cfg: DictConfig) -> dict:
    from rag_pet.study.flow import run_study  # checked (`rag_pet.cli`)
    from rag_pet.study.report import format_study_summary  # these load torch and Ray: after the overrides are

    summary = run_job(lambda compare: run_study(compare, CONFIG_DIR), cfg, CompareConfig)
    show(format_study_summary(summary))
    exit_if_failed(len(summary["failed"]), summary["cells"], "study cells")
    return summary


if __name__ == "__main__":
    main()
