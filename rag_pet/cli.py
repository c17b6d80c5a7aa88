"""Glue for the thin `jobs/` entry points: validate the composed config, run, report user errors in one line."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf import DictConfig

from rag_pet.config import RagPetConfig, to_config
from rag_pet.errors import RagPetError
from rag_pet.evaluation import format_table

T = TypeVar("T")
logger = logging.getLogger("rag_pet")


def run_job(function: Callable[[RagPetConfig], T], cfg: DictConfig) -> T:
    """Validate `cfg` and call `function`; a `RagPetError` exits with status 2 and its one-line message."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return function(to_config(cfg))
    except RagPetError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def format_summary(summary: dict) -> str:
    """What a job prints at the end: the result table and where everything was written."""
    table = format_table(summary["rows"])
    return f"\n{summary['experiment']} on {summary['eval_split']}:\n{table}\nrun directory: {summary['run_dir']}"
