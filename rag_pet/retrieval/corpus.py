"""The passage corpus an index is built over, and its content hash."""

from __future__ import annotations

import hashlib

from rag_pet.config import ARTICLE_SOURCES, CorpusConfig
from rag_pet.data import Passage, article_corpus, articles_of, load_beir, load_scifact
from rag_pet.errors import DataFormatError


def load_corpus(config: CorpusConfig) -> list[Passage]:
    """Passages of the configured corpus, without `exclude_titles` (the first `max_passages` of the rest when set)."""
    if config.name in ARTICLE_SOURCES:
        passages = article_corpus(
            articles_of(config.name, config.fictional_seed, config.fictional_entities, config.path)
        )
    elif config.name == "scifact":
        passages = load_scifact().corpus
    else:
        passages = load_beir(config.path).corpus
    if config.exclude_titles:
        excluded = set(config.exclude_titles)
        passages = [p for p in passages if p.title not in excluded]
    passages = passages[: config.max_passages] if config.max_passages else passages
    if not passages:
        raise DataFormatError(str(config.path or config.name), None, "the corpus has no passages")
    return passages


def corpus_sha256(passages: list[Passage]) -> str:
    """A hash of ids, titles and texts in order: an index is only valid for the corpus it was built from."""
    digest = hashlib.sha256()
    for passage in passages:
        digest.update(f"{passage.id}\t{passage.title}\t{passage.text}\n".encode())
    return digest.hexdigest()
