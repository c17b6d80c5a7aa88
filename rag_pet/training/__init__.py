"""Training: the per-worker loop, its runtime contexts, checkpoints, and the Ray Train launcher."""

from rag_pet.training.context import LocalContext, TrainContext
from rag_pet.training.launcher import TrainingResult, launch_training
from rag_pet.training.loop import run_train_loop

__all__ = ["LocalContext", "TrainContext", "TrainingResult", "launch_training", "run_train_loop"]
