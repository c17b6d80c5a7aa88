"""A study's report written again from the records its cells left on disk (`report_only=true`): nothing runs, so a
change to how results are read does not re-run cells whose provenance (the code revision) it made stale."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from rag_pet.config import TrackingConfig
from rag_pet.errors import ConfigError
from rag_pet.study.records import STUDY_FILE, read_record, record_path
from rag_pet.study.report import write_report
from rag_pet.study.shared import SHARED_FILE
from rag_pet.study.spec import StudyConfig


def report_recorded(study: StudyConfig, study_dir: Path, tracking: TrackingConfig) -> dict:
    """Write the report of the cells the study in `study_dir` ran, from their records alone; the summary. Refused,
    naming the field, when the study never ran there, a cell has no record yet, or `study` differs from the study
    that ran (its fields are read from the report, so they must be those the cells ran under)."""
    plan = study_dir / STUDY_FILE
    if not plan.is_file():
        raise ConfigError("report_only", True, f"false: no study ran in {study_dir} yet ({STUDY_FILE} is missing)")
    ran = json.loads(plan.read_text())
    now = json.loads(json.dumps(asdict(study)))
    for key, value in ran["study"].items():
        if now.get(key) != value:
            raise ConfigError(f"study.{key}", now.get(key), f"{value!r}, as the study in {study_dir} ran")
    records = {cell["id"]: read_record(record_path(study_dir, cell["id"])) for cell in ran["cells"]}
    missing = [cell_id for cell_id, record in records.items() if record is None]
    if missing:
        raise ConfigError(
            "report_only",
            True,
            f"false until every cell has run; {len(missing)} have no record yet ({', '.join(missing[:4])}"
            f"{', ...' if len(missing) > 4 else ''}): the same command without report_only runs them",
        )
    shared_path = study_dir / SHARED_FILE
    shared = json.loads(shared_path.read_text()) if shared_path.is_file() else {}
    return write_report(study, study_dir, list(records.values()), shared, tracking)
