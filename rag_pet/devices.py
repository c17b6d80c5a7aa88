"""Where models run: the torch device a config asks for."""

from __future__ import annotations

import torch


def resolve_device(use_gpu: bool) -> torch.device:
    """cuda when asked for and present, else cpu."""
    return torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")
