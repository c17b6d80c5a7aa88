"""Article datasets: QA sets split by article whose paragraphs are also a retrieval corpus."""

from __future__ import annotations

from rag_pet.errors import ConfigError

ARTICLE_SOURCES = ("squad", "fictional")  # bundled SQuAD v1.1 dev; generated fictional entities
# The generated set's defaults, shared by `data` and `corpus`: the corpus is built from the data's articles.
FICTIONAL_SEED = 0
FICTIONAL_ENTITIES = 60


def check_fictional_entities(name: str, value: int) -> None:
    """Refuse a generated set too small to hold one entity of each kind."""
    if value < 3:
        raise ConfigError(name, value, "at least 3 (a town, a company and a person)")
