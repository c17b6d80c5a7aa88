"""Read JSON-lines files with errors that name the file, the line and the field.

QA schema, one object per line:
    {"question": str, "answers": [str, ...], "id": str (optional), "gold_passage_id": str (optional),
     "title": str (optional: the article asked about; a study's intervals cluster questions on it)}
`"answer": str | [str, ...]` is accepted in place of `"answers"` (NQ-open's spelling).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

from rag_pet.data.types import QAExample
from rag_pet.errors import DataFormatError


def decode_line(raw: bytes, path: Path, number: int) -> str:
    """One line of a UTF-8 file as text; other bytes raise `DataFormatError` naming the line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataFormatError(
            str(path),
            number,
            f"not valid UTF-8 (byte {raw[err.start]:#04x} at column {err.start + 1}); save the file as UTF-8",
        ) from None


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; malformed JSON raises `DataFormatError`."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(str(path), None, "file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = decode_line(raw, path, number)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(str(path), number, f"invalid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(record, dict):
                raise DataFormatError(str(path), number, f"expected a JSON object, got {type(record).__name__}")
            yield number, record


def require_str(record: dict, key: str, path: str | Path, line: int) -> str:
    """The non-empty string at `record[key]`, or a `DataFormatError` naming the field."""
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DataFormatError(str(path), line, f"field '{key}' must be a non-empty string, got {value!r}")
    return value


def read_answers(record: dict, path: str | Path, line: int) -> tuple[str, ...]:
    """The non-empty answer strings of `record` (`answers`, or NQ-open's `answer`), or a `DataFormatError`."""
    key = "answers" if "answers" in record else "answer"
    value = record.get(key)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(a, str) and a.strip() for a in value):
        raise DataFormatError(str(path), line, "field 'answers' must be a non-empty list of non-empty strings")
    return tuple(value)


def read_qa_jsonl(path: str | Path) -> list[QAExample]:
    """QA examples from a JSONL file in the schema above; ids default to `<file stem>-<line>`."""
    path = Path(path)
    examples = []
    for line, record in iter_json_lines(path):
        question = require_str(record, "question", path, line)
        example_id = str(record["id"]) if "id" in record else f"{path.stem}-{line}"
        gold = record.get("gold_passage_id")
        title = record.get("title")
        examples.append(
            QAExample(
                example_id, question.strip(), read_answers(record, path, line), gold and str(gold), title and str(title)
            )
        )
    if not examples:
        raise DataFormatError(str(path), None, "no examples (the file is empty)")
    return examples
