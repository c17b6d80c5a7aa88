"""Training: the per-worker loop, its tasks and runtime contexts, checkpoints; the Ray Train launcher lives in
`rag_pet.training.launcher` (imported on its own, so the loop runs standalone without Ray)."""

from rag_pet.training.context import LocalContext, TrainContext
from rag_pet.training.tasks import run_train_loop

__all__ = ["LocalContext", "TrainContext", "run_train_loop"]
