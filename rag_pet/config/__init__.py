"""Typed configuration: schemas, Hydra registration and validation."""

from rag_pet.config.load import register_configs, to_config, to_dict
from rag_pet.config.schema import (
    PEFT_METHODS_TRAINABLE,
    DataConfig,
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

__all__ = [
    "PEFT_METHODS_TRAINABLE",
    "DataConfig",
    "DeepSpeedConfig",
    "DeploymentConfig",
    "EvalConfig",
    "IndexConfig",
    "ModelConfig",
    "PeftConfig",
    "RagPetConfig",
    "RagConfig",
    "RetrieverConfig",
    "ServeConfig",
    "TrackingConfig",
    "TrainerConfig",
    "register_configs",
    "to_config",
    "to_dict",
]
