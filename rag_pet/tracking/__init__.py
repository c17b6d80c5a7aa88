"""Experiment tracking with W&B."""

from rag_pet.tracking.wandb_run import log_history, start_run

__all__ = ["log_history", "start_run"]
