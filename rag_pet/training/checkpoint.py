"""What a training checkpoint holds (trained weights, optimizer and scheduler, progress) and how it is restored."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from rag_pet.models import load_trained_state, save_trained
from rag_pet.storage import write_json_atomic

MODEL_DIR = "model"
OPTIMIZER_FILE = "optimizer.pt"
STATE_FILE = "train_state.json"


@dataclass
class TrainState:
    """Progress that must survive a restart: steps done, time spent, the logged history."""

    step: int = 0
    train_seconds: float = 0.0
    tokens: int = 0
    trainable_params: int = 0
    total_params: int = 0
    history: list[dict] = field(default_factory=list)


def save_checkpoint(directory: Path, model: nn.Module, optimizer, scheduler, state: TrainState) -> None:
    """Write a complete checkpoint into `directory` (the caller makes it atomic)."""
    save_trained(model, directory / MODEL_DIR)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, directory / OPTIMIZER_FILE)
    write_json_atomic(directory / STATE_FILE, asdict(state))


def read_state(directory: Path) -> TrainState:
    """The progress record of a checkpoint."""
    return TrainState(**json.loads((directory / STATE_FILE).read_text()))


def restore_checkpoint(directory: Path, model: nn.Module, optimizer, scheduler) -> TrainState:
    """Load weights, optimizer and scheduler from `directory` into live objects; return the progress."""
    load_trained_state(model, directory / MODEL_DIR)
    states = torch.load(directory / OPTIMIZER_FILE, weights_only=True, map_location="cpu")
    optimizer.load_state_dict(states["optimizer"])
    scheduler.load_state_dict(states["scheduler"])
    return read_state(directory)
