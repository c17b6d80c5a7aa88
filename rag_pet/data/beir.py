"""BEIR-format retrieval datasets (corpus.jsonl, queries.jsonl, qrels/<split>.tsv); SciFact is bundled."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from rag_pet.data.jsonl import decode_line, iter_json_lines, require_str
from rag_pet.data.resources import SCIFACT_DIR
from rag_pet.data.types import Passage
from rag_pet.errors import DataFormatError


@dataclass(frozen=True)
class BeirDataset:
    """A corpus, its queries by id, and relevance judgements `qrels[split][query_id][doc_id] = grade`."""

    corpus: list[Passage]
    queries: dict[str, str]
    qrels: dict[str, dict[str, dict[str, int]]]


def _corpus_file(folder: Path) -> Path:
    for name in ("corpus.jsonl", "corpus.jsonl.gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataFormatError(str(folder), None, "no corpus.jsonl or corpus.jsonl.gz in this BEIR folder")


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Relevance judgements from a BEIR qrels TSV with a header line."""
    qrels: dict[str, dict[str, int]] = {}
    with open(path, "rb") as handle:
        lines = [decode_line(raw, path, number) for number, raw in enumerate(handle, start=1)]
        rows = csv.reader(lines, delimiter="\t")
        next(rows, None)
        for number, row in enumerate(rows, start=2):
            if len(row) != 3:
                raise DataFormatError(
                    str(path), number, f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(row)}"
                )
            try:
                grade = int(row[2])
            except ValueError:
                raise DataFormatError(str(path), number, f"score {row[2]!r} is not an integer") from None
            qrels.setdefault(row[0], {})[row[1]] = grade
    return qrels


def load_beir(folder: str | Path) -> BeirDataset:
    """Load a BEIR folder; every qrels/*.tsv becomes a split."""
    folder = Path(folder)
    corpus_path = _corpus_file(folder)
    corpus = [
        Passage(
            require_str(rec, "_id", corpus_path, line),
            str(rec.get("title") or ""),
            require_str(rec, "text", corpus_path, line),
        )
        for line, rec in iter_json_lines(corpus_path)
    ]
    queries_path = folder / "queries.jsonl"
    queries = {
        require_str(rec, "_id", queries_path, line): require_str(rec, "text", queries_path, line)
        for line, rec in iter_json_lines(queries_path)
    }
    qrels = {path.stem: read_qrels(path) for path in sorted((folder / "qrels").glob("*.tsv"))}
    if not qrels:
        raise DataFormatError(str(folder / "qrels"), None, "no <split>.tsv qrels files")
    return BeirDataset(corpus, queries, qrels)


def load_scifact() -> BeirDataset:
    """The bundled BEIR SciFact: 5,183 abstracts, 1,109 claims, test and train qrels."""
    return load_beir(SCIFACT_DIR)
