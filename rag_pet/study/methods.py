"""The methods a study compares, by name, and the experiment each one is."""

from __future__ import annotations

from dataclasses import dataclass

from rag_pet.config import PEFT_METHODS_TRAINABLE
from rag_pet.errors import ConfigError

PET_METHODS = tuple(method for method in PEFT_METHODS_TRAINABLE if method != "full")


@dataclass(frozen=True)
class Method:
    """A study method: its experiment overrides, whether it trains, and whether it answers from retrieved passages."""

    name: str
    overrides: tuple[str, ...]
    trains: bool
    retrieves: bool


def method_names() -> list[str]:
    """Every name a study may list."""
    return [
        "zero_shot",
        "full",
        *PET_METHODS,
        "rag",
        *(f"rag+{pet}" for pet in PET_METHODS),
        "joint_rag",
    ]


def resolve_method(name: str) -> Method:
    """The method called `name`: zero_shot; full (closed-book full fine-tuning); any PET method (closed-book, e.g.
    lora, ia3, prompt); rag (frozen retriever and generator); rag+<PET method> (hybrid: the generator's adapter
    trained through the RAG marginal over a frozen retriever); joint_rag (query tower and LoRA generator)."""
    if name == "zero_shot":
        return Method(name, ("experiment=zero_shot",), trains=False, retrieves=False)
    if name == "full":
        return Method(name, ("experiment=closed_book_full",), trains=True, retrieves=False)
    if name in PET_METHODS:
        return Method(name, ("experiment=closed_book_lora", f"peft={name}"), trains=True, retrieves=False)
    if name == "rag":
        return Method(name, ("experiment=rag_frozen",), trains=False, retrieves=True)
    if name.startswith("rag+") and name[4:] in PET_METHODS:
        return Method(name, ("experiment=hybrid_rag_lora", f"peft={name[4:]}"), trains=True, retrieves=True)
    if name == "joint_rag":
        return Method(name, ("experiment=joint_rag",), trains=True, retrieves=True)
    raise ConfigError("study.methods", name, f"one of {', '.join(method_names())}")
