"""One entry point that turns a `DataConfig` into the QA examples of a split."""

from __future__ import annotations

from pathlib import Path

from rag_pet.config import DataConfig
from rag_pet.data.jsonl import read_qa_jsonl
from rag_pet.data.nq_open import load_nq_open
from rag_pet.data.squad import split_squad
from rag_pet.data.types import QAExample
from rag_pet.errors import ConfigError


def load_qa_split(data: DataConfig, split: str, limit: int | None = None) -> list[QAExample]:
    """Questions of `split` for the configured dataset, the first `limit` of them when given."""
    if data.name == "squad":
        examples = split_squad(
            data.split_seed, data.validation_articles, data.test_articles, data.seen_holdout
        ).examples[split]
    elif data.name == "nq_open":
        if split == "validation_seen":
            raise ConfigError("data.eval_split", split, "train, validation or test for nq_open")
        examples = load_nq_open(split)
    else:
        path = Path(data.path) / f"{split}.jsonl"
        if not path.is_file():
            raise ConfigError("data.path", data.path, f"a directory containing {split}.jsonl (not found: {path})")
        examples = read_qa_jsonl(path)
    return examples[:limit] if limit is not None else examples
