"""A user's own knowledge-injection data for `data=documents` (the fictional set generates its own), optional files
in the documents folder:

    paraphrases.jsonl      {"document_id": str, "text": str}   the document's facts in other words; with
                           data.phrasings=K, text training reads each document and its first K-1 paraphrases
    fact_questions.jsonl   {"document_id": str, "question": str, "answers": [str, ...]}   question-answer pairs
                           about the document's facts (synthetic QA, Mecklenburg et al. 2024, arXiv 2404.00213);
                           data.mixed_questions=facts mixes those of the texts' documents into text training

Write them in training phrasings only: evaluation asks `question_heldout` (questions.jsonl) under
data.heldout_phrasings=true, and a fact question worded as an evaluation question would train on the test.
"""

from __future__ import annotations

from pathlib import Path

from rag_pet.data.documents import documents_articles
from rag_pet.data.jsonl import iter_json_lines, read_answers, require_str
from rag_pet.data.squad import article_corpus
from rag_pet.data.types import Passage, QAExample
from rag_pet.errors import DataFormatError

PARAPHRASES, FACT_QUESTIONS = "paraphrases.jsonl", "fact_questions.jsonl"


def _document_titles(folder: Path) -> dict[str, str]:
    return {passage.id: passage.title.replace(" ", "_") for passage in article_corpus(documents_articles(folder))}


def document_paraphrases(folder: str | Path, phrasings: int) -> dict[str, tuple[str, ...]]:
    """Per document id, its text and its first `phrasings - 1` paraphrases from `paraphrases.jsonl`; a
    `DataFormatError` names a document with fewer, or a paraphrase of no document."""
    folder = Path(folder)
    texts = {passage.id: [passage.text] for passage in article_corpus(documents_articles(folder))}
    path = folder / PARAPHRASES
    for line, record in iter_json_lines(path):
        document = require_str(record, "document_id", path, line)
        if document not in texts:
            raise DataFormatError(str(path), line, f"document_id {document!r} is no document of the folder")
        texts[document].append(require_str(record, "text", path, line))
    short = next((document for document, found in texts.items() if len(found) < phrasings), None)
    if short is not None:
        raise DataFormatError(
            str(path),
            None,
            f"document {short!r} has {len(texts[short]) - 1} paraphrase(s); data.phrasings={phrasings} needs"
            f" {phrasings - 1} per document (or lower data.phrasings)",
        )
    return {document: tuple(found[:phrasings]) for document, found in texts.items()}


def document_fact_questions(folder: str | Path) -> list[QAExample]:
    """The question-answer pairs of `fact_questions.jsonl`, each with its document as gold passage and article."""
    folder = Path(folder)
    titles = _document_titles(folder)
    path = folder / FACT_QUESTIONS
    questions = []
    for line, record in iter_json_lines(path):
        document = require_str(record, "document_id", path, line)
        if document not in titles:
            raise DataFormatError(str(path), line, f"document_id {document!r} is no document of the folder")
        question = require_str(record, "question", path, line).strip()
        answers = read_answers(record, path, line)
        questions.append(QAExample(f"{path.stem}-{line}", question, answers, document, titles[document]))
    return questions


def renditions_of(passages: list[Passage], texts: dict[str, tuple[str, ...]]) -> list[Passage]:
    """Each passage as its texts in order, ids `<passage id>~<n>`."""
    return [
        Passage(f"{passage.id}~{number}", passage.title, text)
        for passage in passages
        for number, text in enumerate(texts[passage.id])
    ]
