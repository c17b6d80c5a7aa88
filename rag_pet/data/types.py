"""Plain records shared by every dataset: questions with answers, and passages of a corpus."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QAExample:
    """A question, its acceptable answers and, where known, the id of the passage that answers it and the article
    (document) it asks about: questions of one article are not independent, so intervals cluster on it."""

    id: str
    question: str
    answers: tuple[str, ...]
    gold_passage_id: str | None = None
    article: str | None = None


@dataclass(frozen=True)
class Passage:
    """One retrievable unit of a corpus, with an id that stays the same across releases of the package."""

    id: str
    title: str
    text: str


def passage_text(passage: Passage) -> str:
    """What the document encoder sees: title and text (as the BEIR/MTEB baselines encode them)."""
    return f"{passage.title} {passage.text}".strip()
