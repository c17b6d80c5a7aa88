"""What a training checkpoint holds besides optimizer state: trained weights, their export, and the progress record."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel

from rag_pet.models import load_full_model_state, save_trained, unwrap
from rag_pet.models.adaptation import load_trainable_state, trainable_state
from rag_pet.storage import write_json_atomic

MODEL_DIR = "model"
TRAINABLE_FILE = "trainable.safetensors"
STATE_FILE = "train_state.json"


@dataclass
class TrainState:
    """Progress that must survive a restart: steps done, time spent, the logged history, where it resumed, and the
    task's own fields as of the last logged step (a RAG run's index version)."""

    step: int = 0
    train_seconds: float = 0.0
    wall_seconds: float = 0.0  # from the first step to the last, checkpoint writes included
    tokens: int = 0
    trainable_params: int = 0
    total_params: int = 0
    flops: float = 0.0
    peak_memory_bytes: int = 0
    train_memory_bytes: int = 0
    mfu: float | None = None
    precision: str = ""
    history: list[dict] = field(default_factory=list)
    resumed_at: list[int] = field(default_factory=list)
    task_fields: dict = field(default_factory=dict)


def save_model_files(directory: Path, model: nn.Module) -> None:
    """Write the trained weights of an unsharded model into `directory` (the caller makes it atomic).

    `model/` is the export (`save_pretrained`: adapter or full model) that evaluation and serving load. Adapters
    also keep their live parameters in `trainable.safetensors`, because an export may differ in shape from the
    training state (AdaLoRA saves its pruned ranks) and resuming needs the latter.
    """
    save_trained(model, directory / MODEL_DIR)
    if not isinstance(unwrap(model), PreTrainedModel):  # an adapter, or a RAG model / bi-encoder of several parts
        save_file(trainable_state(model), directory / TRAINABLE_FILE)


def write_state(directory: Path, state: TrainState) -> None:
    """Write the progress record of a checkpoint."""
    write_json_atomic(directory / STATE_FILE, asdict(state))


def read_state(directory: Path) -> TrainState:
    """The progress record of a checkpoint."""
    return TrainState(**json.loads((directory / STATE_FILE).read_text()))


def load_weights(directory: Path, model: nn.Module) -> None:
    """Put a checkpoint's trained weights into an already built model: adapter state, or the full model."""
    if (directory / TRAINABLE_FILE).is_file():
        load_trainable_state(model, load_file(directory / TRAINABLE_FILE))
    else:
        load_full_model_state(model, directory / MODEL_DIR)
