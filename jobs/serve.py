"""Serve a finished run over HTTP: `python -m jobs.serve serve.run_dir=outputs/<experiment>/<time>`."""

import hydra
from omegaconf import DictConfig

from rag_pet.cli import run_job
from rag_pet.config import register_configs
from rag_pet.experiment import serve

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    summary = run_job(serve, cfg)
    print(f"Serve config file: {summary['config_file']} (index version {summary['index_version']})")


if __name__ == "__main__":
    main()
