"""Evaluate the base generator, or trained weights given by `eval.model_dir=<run dir>/final_checkpoint/model`."""

from omegaconf import DictConfig

from rag_pet.cli import exit_if_failed, format_summary, hydra_job, run_job
from rag_pet.config import register_configs
from rag_pet.console import show

register_configs()


@hydra_job
def main(cfg: DictConfig) -> dict:
    from rag_pet.experiment import evaluate_model  # torch and Ray load here, not above (`rag_pet.cli`)

    summary = run_job(evaluate_model, cfg)
    show(format_summary(summary))
    failed = sum(int(row.get("errors") or 0) for row in summary["rows"])
    exit_if_failed(failed, sum(int(row.get("count") or 0) for row in summary["rows"]) or failed, "questions")
    return summary["metrics"]


if __name__ == "__main__":
    main()
