"""What a study keeps on disk once a cell or a tuning has finished. A finished cell is never trained again (a stale
one starts from an empty run directory), so the Ray Train checkpoints it could have resumed from are dropped and its
`final_checkpoint`, which later cells start from and `jobs.serve` serves, stays; a finished tuning keeps its
trials' scores, logs and W&B runs but not their weights, which no cell reads (the chosen values are trained again in
the cells). A full fine-tuning cell of SmolLM2-135M otherwise leaves 4.6 GB, a study of hundreds of cells more than a
disk holds."""

from __future__ import annotations

import shutil
from pathlib import Path

from rag_pet.config import TrainerConfig
from rag_pet.sweep.trial import TRIALS_DIR
from rag_pet.training.launcher import CHECKPOINTS_DIR, FINAL_CHECKPOINT


def drop_resume_checkpoints(trainer: TrainerConfig, run_dir: str) -> None:
    """Remove a finished run's Ray Train checkpoints when they lie in its own run directory (the default
    `<run_dir>/checkpoints`); a `trainer.storage_path` the user chose is left alone."""
    if not trainer.storage_path:
        shutil.rmtree(Path(run_dir) / CHECKPOINTS_DIR, ignore_errors=True)


def drop_trial_weights(sweep_dir: Path, trainer: TrainerConfig) -> None:
    """Remove every trial's checkpoints and final weights under `sweep_dir`, unless the trials write their
    checkpoints to a `trainer.storage_path` of the user's."""
    if trainer.storage_path:
        return
    for trial in (sweep_dir / TRIALS_DIR).glob("*"):
        shutil.rmtree(trial / CHECKPOINTS_DIR, ignore_errors=True)
        shutil.rmtree(trial / FINAL_CHECKPOINT, ignore_errors=True)
