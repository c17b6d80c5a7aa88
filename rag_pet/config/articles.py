"""Article datasets: QA sets split by article whose paragraphs are also a retrieval corpus."""

from __future__ import annotations

from pathlib import Path

from rag_pet.errors import ConfigError

# bundled SQuAD v1.1 dev; generated fictional entities; a user's documents.jsonl + questions.jsonl folder
ARTICLE_SOURCES = ("squad", "fictional", "documents")
# The generated set's defaults, shared by `data` and `corpus`: the corpus is built from the data's articles.
FICTIONAL_SEED = 0
FICTIONAL_ENTITIES = 90


def check_fictional_entities(name: str, value: int) -> None:
    """Refuse a generated set too small to hold one entity of each kind."""
    if value < 3:
        raise ConfigError(name, value, "at least 3 (a town, a company and a person)")


def documents_folder(name: str, value: str | None) -> str:
    """The absolute path of a documents folder (workers run in other directories), refused when unset."""
    if not value:
        raise ConfigError(name, value, "a folder holding documents.jsonl and questions.jsonl")
    return str(Path(value).expanduser().resolve())
