"""What an index family is built from and where it lives: corpus, index settings and retriever, by name and folder."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the schema holds an `index_source` property: it imports this module
    from rag_pet.config.schema import CorpusConfig, IndexConfig, RetrieverConfig


def index_name(corpus: CorpusConfig, index: IndexConfig) -> str:
    """Directory name of an index family: corpus and factory string, e.g. `squad_IVF256_Flat`."""
    return f"{corpus.name}_{re.sub(r'[^A-Za-z0-9]+', '_', index.factory).strip('_')}"


def index_root(index: IndexConfig) -> Path:
    """Absolute storage directory of the configured index families."""
    return Path(index.storage_path).expanduser().resolve()


@dataclass(frozen=True)
class IndexSource:
    """The corpus, index settings and retriever of an index family: what building, finding and opening need."""

    corpus: CorpusConfig
    index: IndexConfig
    retriever: RetrieverConfig

    @property
    def name(self) -> str:
        return index_name(self.corpus, self.index)

    @property
    def root(self) -> Path:
        return index_root(self.index)
