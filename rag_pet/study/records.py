"""A study's records, the one module that knows their fields and layout: each cell's JSON record (what ran, on what,
its metrics and per-question records, or its error; written atomically beside its run directory, read back, and
re-used only while its provenance stands) and each tuned method's tuning record. The runner and the tuning write
them; the report reads them."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path

from rag_pet.config import to_dict
from rag_pet.naming import safe_name
from rag_pet.storage import write_json_atomic
from rag_pet.study.cells import Cell
from rag_pet.study.environment import environment
from rag_pet.study.index_cost import index_costs
from rag_pet.study.names import CELLS_DIR
from rag_pet.study.provenance import provenance_of, rerun_reason, stale_reason
from rag_pet.study.shared import index_key
from rag_pet.study.spec import StudyConfig

logger = logging.getLogger(__name__)
STUDY_FILE = "study.json"  # the study as it ran and its cells in plan order
TUNE_DIR, TUNING_RECORD = "tune", "tuning.json"
DONE = "done"


def record_path(study_dir: Path, cell_id: str) -> Path:
    """Where the record of cell `cell_id` is."""
    return study_dir / CELLS_DIR / f"{cell_id}.json"


def read_record(path: Path) -> dict | None:
    """A JSON record (a cell's, a tuning's), None when it has not been written (its run has not finished) yet."""
    return json.loads(path.read_text()) if path.is_file() else None


def finished_record(study_dir: Path, cell: Cell, base: dict | None = None) -> dict | None:
    """The record of this cell when it finished before and still stands: same overrides, same provenance (code
    revision, uncommitted changes, package versions, hashes of the weights, data and index it reads) and, for a
    freshness cell, made from the base cell's record `base` that is re-used now (None: the base runs again, so its
    weights will be new). A stale cell starts again from an empty run directory (its old checkpoints belong to
    another config, code or base) and its new record says why (`rerun_reason`); see `provenance_changes` for how
    a tree with uncommitted changes is treated."""
    record = read_record(record_path(study_dir, cell.id))
    if record is None:
        return None
    reason = stale_reason(record, cell, provenance_of(cell), base)
    if reason:
        logger.info("cell %s runs again: %s", cell.id, reason)
        shutil.rmtree(study_dir / CELLS_DIR / cell.id, ignore_errors=True)
        return None
    return record if record.get("status") == DONE else None


def write_cell_record(
    cell: Cell,
    seconds: float,
    study_dir: Path,
    metrics: dict | None = None,
    error: str | None = None,
    questions: dict[str, list[dict]] | None = None,
) -> dict:
    """Write the cell's record (what ran, on what, its metrics and per-question records per split, or its error;
    for a retrieving cell the FLOPs of building and of searching its index, `index_cost.index_costs`) next to its
    run directory, with its provenance and why it ran again (None for a first run): the base cell's
    record it follows is read back from disk."""
    base = read_record(record_path(study_dir, cell.after)) if cell.after else None
    provenance = provenance_of(cell)
    record = {
        "id": cell.id,
        "method": cell.method.name,
        "kind": cell.kind,
        "seed": cell.seed if cell.method.trains else None,
        "after": cell.after,
        "index": index_key(cell.config.index_source) if cell.method.retrieves else None,
        **(index_costs(cell.config) if cell.method.retrieves else {}),
        "command": cell.command,
        "overrides": list(cell.overrides),
        "wall_seconds": seconds,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "provenance": provenance,
        "base_finished_at": base.get("finished_at") if base else None,
        "rerun_reason": rerun_reason(read_record(record_path(study_dir, cell.id)), cell, provenance, base),
        "config": to_dict(cell.config),
        "status": "failed" if error else DONE,
        "error": error,
        "metrics": metrics or {},
        "questions": questions or {},
    }
    if error:
        logger.error("cell %s failed after %.0f s: %s", cell.id, seconds, error)
    else:
        logger.info("cell %s finished in %.0f s", cell.id, seconds)
    write_json_atomic(record_path(study_dir, cell.id), record)
    return record


def tuning_dir(study_dir: Path, method: str) -> Path:
    """Where `method`'s tuning sweep writes (its trials, `summary.json`, the best experiment) and its record."""
    return study_dir / TUNE_DIR / safe_name(method)


def tuning_records(study: StudyConfig, study_dir: Path) -> list[dict]:
    """The finished tuning record of each of the study's methods that has one, in study order."""
    if not study.tune.enabled:
        return []
    records = [read_record(tuning_dir(study_dir, method) / TUNING_RECORD) for method in study.methods]
    return [record for record in records if record and record.get("status") == DONE]
