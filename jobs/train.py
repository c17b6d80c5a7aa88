"""Train (and evaluate before/after) one experiment: `python -m jobs.train experiment=quickstart`."""

from omegaconf import DictConfig

from rag_pet.cli import format_summary, hydra_job, run_job
from rag_pet.config import register_configs
from rag_pet.console import show

register_configs()


@hydra_job
def main(cfg: DictConfig) -> dict:
    from rag_pet.experiment import run_experiment  # torch and Ray load here, not above (`rag_pet.cli`)

    summary = run_job(run_experiment, cfg)
    show(format_summary(summary))
    return summary["metrics"]


if __name__ == "__main__":
    main()
