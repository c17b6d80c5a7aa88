"""Serve a finished run over HTTP: `python -m jobs.serve serve.run_dir=outputs/<experiment>/<time>`."""

from omegaconf import DictConfig

from rag_pet.cli import hydra_job, run_job
from rag_pet.config import register_configs
from rag_pet.console import show

register_configs()


@hydra_job
def main(cfg: DictConfig) -> dict:
    from rag_pet.experiment import serve  # torch and Ray load here, not above (`rag_pet.cli`)

    summary = run_job(serve, cfg)
    show(f"Serve config file: {summary['config_file']} (index version {summary['index_version']})")
    return summary


if __name__ == "__main__":
    main()
