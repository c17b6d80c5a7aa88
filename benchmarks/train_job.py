"""Run `python -m jobs.train` in a fresh process and return its result row (accounting included)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NO_EVAL = ("eval.before_training=false", "eval.after_training=false", "tracking=disabled")


def run_job(overrides: list[str]) -> list[dict]:
    """Every result row of `results.json` from one `jobs.train` run in its own process (so peak RSS is its own)."""
    run_dir = Path(tempfile.mkdtemp(prefix="rag_pet_bench_"))
    command = [sys.executable, "-m", "jobs.train", *overrides, f"hydra.run.dir={run_dir}"]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if completed.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    return json.loads((run_dir / "results.json").read_text())["rows"]


def run_train(overrides: list[str]) -> dict:
    """The trained row of a run without evaluation."""
    (row,) = run_job([*NO_EVAL, *overrides])
    return row


def step_seconds(row: dict) -> float:
    """Mean seconds per optimizer step, checkpoint writing excluded."""
    return row["train_seconds"] / row["train_steps"]
