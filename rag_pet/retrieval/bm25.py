"""BM25 baseline with `bm25s` (English stopwords, Snowball stemmer), over the same passages as the dense index."""

from __future__ import annotations

import bm25s
import Stemmer

from rag_pet.data import Passage, passage_text


class BM25Retriever:
    """Lexical top-k over a passage list; returns document ids and BM25 scores, best first."""

    def __init__(self, passages: list[Passage], language: str = "english"):
        self.doc_ids = [passage.id for passage in passages]
        self.stemmer = Stemmer.Stemmer(language)
        tokens = bm25s.tokenize(
            [passage_text(p) for p in passages], stopwords="en", stemmer=self.stemmer, show_progress=False
        )
        self.model = bm25s.BM25()
        self.model.index(tokens, show_progress=False)

    def search(self, queries: list[str], k: int) -> list[list[tuple[str, float]]]:
        """Top-k (doc id, score) per query."""
        k = min(k, len(self.doc_ids))
        tokens = bm25s.tokenize(queries, stopwords="en", stemmer=self.stemmer, show_progress=False)
        rows, scores = self.model.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return [
            [(self.doc_ids[r], float(s)) for r, s in zip(row, score, strict=True)]
            for row, score in zip(rows, scores, strict=True)
        ]
