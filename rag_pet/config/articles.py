"""Article datasets: QA sets split by article whose paragraphs are also a retrieval corpus."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rag_pet.errors import ConfigError

if TYPE_CHECKING:
    from rag_pet.config.retrieval import CorpusConfig
    from rag_pet.config.schema import DataConfig

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


def check_same_articles(data: DataConfig, corpus: CorpusConfig) -> None:
    """The corpus of the data's own article source must hold the data's very articles: the fictional set generated
    from the same seed and size, the documents of the same folder."""
    if data.name != corpus.name or data.name not in ("fictional", "documents"):
        return
    for name in ("fictional_seed", "fictional_entities") if data.name == "fictional" else ("path",):
        if getattr(corpus, name) != getattr(data, name):
            raise ConfigError(
                f"corpus.{name}",
                getattr(corpus, name),
                f"data.{name} ({getattr(data, name)}): the corpus holds the data's articles (leave it unset)",
            )
