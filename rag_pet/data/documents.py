"""A user's own documents and questions as an article dataset (`data=documents`): a folder with

    documents.jsonl   {"id": str, "title": str, "text": str}   documents sharing a title are one article's
                      paragraphs, in file order; a document's id is its passage id
      or corpus.jsonl a BEIR corpus, {"_id": str, "title": str, "text": str} (other keys, e.g. metadata, ignored):
                      the same, but a document with an empty or missing title is an article of its own, titled
                      by its `_id`
    questions.jsonl   {"question": str, "answers": [str, ...], "id": str (optional), "document_id": str,
                      "question_heldout": str (optional: the question in other words, which evaluation asks
                      under data.heldout_phrasings=true)}
    splits.json       optional: {"validation": [title, ...], "test": [title, ...]}, the unseen and late articles

turned into SQuAD-shaped articles, so they split, index and train exactly as SQuAD does. An answer's
`answer_start` is its first occurrence in its document's text, -1 when it is not a span of it (EM/F1 read the
answer texts only).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from rag_pet.data.jsonl import iter_json_lines, read_answers, require_str
from rag_pet.errors import DataFormatError

DOCUMENTS, BEIR_CORPUS, QUESTIONS, SPLITS = "documents.jsonl", "corpus.jsonl", "questions.jsonl", "splits.json"
SPLIT_KEYS = ("validation", "test")
HOLDING = f"data.path must be a folder holding {DOCUMENTS} (or a BEIR {BEIR_CORPUS}) and {QUESTIONS}"


def documents_articles(folder: str | Path) -> tuple[dict, ...]:
    """The folder's articles (in order of each title's first document), read once per version of its files."""
    folder = Path(folder).expanduser().resolve()
    documents = documents_file(folder)
    if not (folder / QUESTIONS).is_file():
        raise DataFormatError(str(folder / QUESTIONS), None, f"file not found; {HOLDING}")
    return _articles(folder, documents.name, _signature(folder, documents.name, QUESTIONS))


def documents_file(folder: Path) -> Path:
    """The folder's one file of documents: `documents.jsonl`, or a BEIR `corpus.jsonl`."""
    present = [folder / name for name in (DOCUMENTS, BEIR_CORPUS) if (folder / name).is_file()]
    if len(present) > 1:
        raise DataFormatError(
            str(folder), None, f"holds both {DOCUMENTS} and {BEIR_CORPUS}; keep the one whose ids questions.jsonl names"
        )
    if not present:
        raise DataFormatError(str(folder / DOCUMENTS), None, f"file not found; {HOLDING}")
    return present[0]


def documents_files(folder: str | Path) -> list[Path]:
    """The files of the folder that `data=documents` reads, those present (what a study's data hash covers)."""
    folder = Path(folder).expanduser()
    return [folder / name for name in (DOCUMENTS, BEIR_CORPUS, QUESTIONS, SPLITS) if (folder / name).is_file()]


def documents_splits(folder: str | Path) -> dict[str, list[str]] | None:
    """The validation and test titles `splits.json` names (checked against the articles), None without one."""
    folder = Path(folder).expanduser().resolve()
    if not (folder / SPLITS).is_file():
        return None
    titles = {article["title"] for article in documents_articles(folder)}
    return _splits(folder / SPLITS, frozenset(titles), documents_file(folder).name, _signature(folder, SPLITS))


def _signature(folder: Path, *names: str) -> tuple:
    """Names, sizes and modification times: a cached read is re-done when a file changes."""
    stats = [(name, (folder / name).stat()) for name in names if (folder / name).is_file()]
    return tuple((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats)


@lru_cache(maxsize=4)
def _articles(folder: Path, documents: str, signature: tuple) -> tuple[dict, ...]:
    paragraphs = _read_documents(folder / documents)
    _attach_questions(folder / QUESTIONS, paragraphs, documents)
    articles: dict[str, dict] = {}
    for title, paragraph in paragraphs.values():
        articles.setdefault(title, {"title": title, "paragraphs": []})["paragraphs"].append(paragraph)
    return tuple(articles.values())


def _read_documents(path: Path) -> dict[str, tuple[str, dict]]:
    """(title, SQuAD paragraph with the document's id) per document id, in file order."""
    beir = path.name == BEIR_CORPUS
    key = "_id" if beir else "id"
    paragraphs: dict[str, tuple[str, dict]] = {}
    lines: dict[str, int] = {}
    untitled: dict[str, int] = {}  # BEIR documents without a title: line per id
    for line, record in iter_json_lines(path):
        doc_id = require_str(record, key, path, line)
        if doc_id in paragraphs:
            raise DataFormatError(
                str(path), line, f"{key} {doc_id!r} is also the {key} of line {lines[doc_id]}; give each its own {key}"
            )
        title = _beir_title(record, path, line) if beir else require_str(record, "title", path, line)
        if not title:
            title, untitled[doc_id] = doc_id, line
        text = require_str(record, "text", path, line)
        paragraphs[doc_id], lines[doc_id] = (title, {"id": doc_id, "context": text, "qas": []}), line
    if not paragraphs:
        raise DataFormatError(str(path), None, "no documents (the file is empty)")
    titled = {title for doc_id, (title, _) in paragraphs.items() if doc_id not in untitled}
    clashes = [doc_id for doc_id in untitled if doc_id in titled]  # in file order
    if clashes:
        raise DataFormatError(
            str(path), untitled[clashes[0]], f"_id {clashes[0]!r} has no title but is another's title; give it a title"
        )
    return paragraphs


def _beir_title(record: dict, path: Path, line: int) -> str:
    """A BEIR document's title, "" when it has none (empty, blank or missing)."""
    title = record.get("title")
    if title is not None and not isinstance(title, str):
        raise DataFormatError(str(path), line, f"field 'title' must be a string, got {title!r}")
    return title if title and title.strip() else ""


def _attach_questions(path: Path, paragraphs: dict[str, tuple[str, dict]], documents: str) -> None:
    """Each question of the file, in the `qas` of the document (of the file `documents`) that answers it."""
    seen: dict[str, int] = {}
    for line, record in iter_json_lines(path):
        question = require_str(record, "question", path, line).strip()
        doc_id = require_str(record, "document_id", path, line)
        if doc_id not in paragraphs:
            raise DataFormatError(
                str(path), line, f"document_id {doc_id!r} is no id in {documents}; name the document with the answer"
            )
        qa_id = str(record["id"]) if "id" in record else f"{path.stem}-{line}"
        if qa_id in seen:
            raise DataFormatError(
                str(path), line, f"id {qa_id!r} is also the id of line {seen[qa_id]}; ids must differ"
            )
        seen[qa_id] = line
        context = paragraphs[doc_id][1]["context"]
        answers = [{"text": text, "answer_start": context.find(text)} for text in read_answers(record, path, line)]
        qa = {"id": qa_id, "question": question, "answers": answers}
        if "question_heldout" in record:
            qa["question_heldout"] = require_str(record, "question_heldout", path, line)
        paragraphs[doc_id][1]["qas"].append(qa)
    if not seen:
        raise DataFormatError(str(path), None, "no questions (the file is empty)")


@lru_cache(maxsize=4)
def _splits(path: Path, titles: frozenset[str], documents: str, signature: tuple) -> dict[str, list[str]]:
    try:
        chosen = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise DataFormatError(str(path), None, "not valid UTF-8; save the file as UTF-8") from None
    except json.JSONDecodeError as err:
        raise DataFormatError(str(path), err.lineno, f"invalid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(chosen, dict) or set(chosen) != set(SPLIT_KEYS):
        raise DataFormatError(str(path), None, 'expected {"validation": [titles], "test": [titles]} and no other keys')
    for key in SPLIT_KEYS:
        value = chosen[key]
        if not isinstance(value, list) or not value or not all(isinstance(title, str) for title in value):
            raise DataFormatError(str(path), None, f"'{key}' must be a non-empty list of titles, got {value!r}")
        unknown = [title for title in value if title not in titles]
        if unknown:
            raise DataFormatError(
                str(path), None, f"'{key}' names {unknown[0]!r}, no title in {documents}; use the titles it has"
            )
    both = set(chosen["validation"]) & set(chosen["test"])
    if both:
        raise DataFormatError(str(path), None, f"{sorted(both)[0]!r} is in both 'validation' and 'test'; pick one")
    if not titles - set(chosen["validation"]) - set(chosen["test"]):
        raise DataFormatError(str(path), None, "every title is in 'validation' or 'test'; leave some for training")
    return {key: list(chosen[key]) for key in SPLIT_KEYS}
