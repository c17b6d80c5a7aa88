"""Typed configuration: schemas, Hydra registration and validation."""

from rag_pet.config.articles import ARTICLE_SOURCES
from rag_pet.config.data import DataConfig
from rag_pet.config.load import register_configs, to_config, to_dict, to_structured
from rag_pet.config.retrieval import IndexSource, index_name, index_root
from rag_pet.config.schema import (
    PEFT_METHODS_TRAINABLE,
    CorpusConfig,
    DeepSpeedConfig,
    EvalConfig,
    IndexConfig,
    ModelConfig,
    PeftConfig,
    RagConfig,
    RagPetConfig,
    RetrieverConfig,
    TrackingConfig,
    TrainerConfig,
)
from rag_pet.config.serve import DeploymentConfig, ServeConfig
from rag_pet.config.sweep import SchedulerConfig, SweepConfig, dimensions

__all__ = [
    "ARTICLE_SOURCES",
    "PEFT_METHODS_TRAINABLE",
    "CorpusConfig",
    "DataConfig",
    "DeepSpeedConfig",
    "DeploymentConfig",
    "EvalConfig",
    "IndexSource",
    "IndexConfig",
    "ModelConfig",
    "PeftConfig",
    "RagPetConfig",
    "RagConfig",
    "RetrieverConfig",
    "SchedulerConfig",
    "ServeConfig",
    "SweepConfig",
    "TrackingConfig",
    "TrainerConfig",
    "dimensions",
    "index_name",
    "index_root",
    "register_configs",
    "to_config",
    "to_dict",
    "to_structured",
]
