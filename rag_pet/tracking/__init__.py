"""Experiment tracking with W&B."""

from rag_pet.tracking.wandb_run import log_history, log_result_rows, start_run

__all__ = ["log_history", "log_result_rows", "start_run"]
