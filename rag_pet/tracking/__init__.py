"""Experiment tracking with W&B."""

from rag_pet.tracking.wandb_run import (
    log_file_artifact,
    log_history,
    log_model_artifact,
    log_record,
    log_result_rows,
    start_run,
)

__all__ = ["log_file_artifact", "log_history", "log_model_artifact", "log_record", "log_result_rows", "start_run"]
