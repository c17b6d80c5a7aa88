"""Generators, their adaptation (PEFT, full, frozen), and offline pretrained weights."""

from rag_pet.models.adaptation import (
    adapt_model,
    attach_adapter,
    count_parameters,
    load_full_model_state,
    save_trained,
    unwrap,
)
from rag_pet.models.generator import Generator, build_generator, build_tokenizer

__all__ = [
    "Generator",
    "adapt_model",
    "attach_adapter",
    "build_generator",
    "build_tokenizer",
    "count_parameters",
    "load_full_model_state",
    "save_trained",
    "unwrap",
]
