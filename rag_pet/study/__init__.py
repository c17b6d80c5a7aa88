"""Comparison studies: RAG, full fine-tuning, PET and hybrids trained under one budget and measured side by side."""

from hydra.core.config_store import ConfigStore

from rag_pet.study.spec import BudgetConfig, CompareConfig, StudyConfig

COMPARE_SCHEMA = "compare_schema"


def register_study_configs() -> None:
    """Register the typed schema `conf/compare.yaml` names first in its defaults list."""
    ConfigStore.instance().store(name=COMPARE_SCHEMA, node=CompareConfig)


__all__ = ["BudgetConfig", "CompareConfig", "StudyConfig", "register_study_configs"]
