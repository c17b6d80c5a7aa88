"""Locations of the datasets bundled inside the package (see resources/*/README.md for attribution)."""

from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent / "resources"
SQUAD_DEV = RESOURCES / "squad_v1.1_dev" / "dev-v1.1.json.gz"
SCIFACT_DIR = RESOURCES / "scifact_beir"
NQ_OPEN_DIR = RESOURCES / "nq_open"
