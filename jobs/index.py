"""Build a sharded FAISS index version: `python -m jobs.index corpus=scifact index=ivf`."""

from omegaconf import DictConfig

from rag_pet.cli import hydra_job, run_job
from rag_pet.config import register_configs
from rag_pet.console import show

register_configs()


@hydra_job
def main(cfg: DictConfig) -> dict:
    from rag_pet.experiment import build_index  # torch and Ray load here, not above (`rag_pet.cli`)

    built = run_job(build_index, cfg)
    show(
        f"\nindex {built['name']} v{built['version']}: {built['num_vectors']} vectors of dim {built['dim']}, "
        f"{built['num_shards']} shards, factory {built['factory']!r}, encoder {built['encoder']}"
    )
    show(f"directory: {built['directory']}")
    return built


if __name__ == "__main__":
    main()
