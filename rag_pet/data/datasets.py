"""One entry point that turns a `DataConfig` into the QA examples of a split."""

from __future__ import annotations

from pathlib import Path

from rag_pet.config import DataConfig
from rag_pet.data.jsonl import read_qa_jsonl
from rag_pet.data.nq_open import load_nq_open
from rag_pet.data.squad import SquadSplit, split_passages, split_squad
from rag_pet.data.types import Passage, QAExample
from rag_pet.errors import ConfigError


def load_qa_split(data: DataConfig, split: str, limit: int | None = None) -> list[QAExample]:
    """Questions of `split` for the configured dataset, the first `limit` of them when given."""
    if data.name == "squad":
        examples = squad_split(data).examples[split]
    elif data.name == "nq_open":
        if split in ("validation_seen", "test_train"):
            raise ConfigError("data.eval_split", split, "train, validation or test for nq_open")
        examples = load_nq_open(split)
    else:
        path = Path(data.path) / f"{split}.jsonl"
        if not path.is_file():
            raise ConfigError("data.path", data.path, f"a directory containing {split}.jsonl (not found: {path})")
        examples = read_qa_jsonl(path)
    return examples[:limit] if limit is not None else examples


def squad_split(data: DataConfig) -> SquadSplit:
    """The SQuAD article split `data` configures."""
    return split_squad(
        data.split_seed,
        data.validation_articles,
        data.test_articles,
        data.seen_holdout,
        test_train_fraction=data.test_train_fraction,
    )


def load_split_passages(data: DataConfig, split: str, limit: int | None = None) -> list[Passage]:
    """The paragraphs of the articles behind `split` (SQuAD), the first `limit` of them when given."""
    passages = split_passages(squad_split(data), split)
    return passages[:limit] if limit is not None else passages
