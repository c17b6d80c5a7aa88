"""One entry point that turns a `DataConfig` into the QA examples of a split."""

from __future__ import annotations

from pathlib import Path

from rag_pet.config import ARTICLE_SOURCES, DataConfig
from rag_pet.config.data import SPLITS
from rag_pet.data.documents import documents_articles, documents_splits
from rag_pet.data.fictional import fictional_articles
from rag_pet.data.jsonl import read_qa_jsonl
from rag_pet.data.nq_open import load_nq_open
from rag_pet.data.squad import SquadSplit, load_squad_articles, split_passages, split_squad
from rag_pet.data.types import Passage, QAExample
from rag_pet.errors import ConfigError

NQ_OPEN_SPLITS = ("train", "validation", "test")


def available_splits(data: DataConfig) -> tuple[str, ...]:
    """The splits the configured dataset has: all of an article dataset's, NQ-open's three, a JSONL folder's files."""
    if data.name in ARTICLE_SOURCES:
        return SPLITS
    if data.name == "nq_open":
        return NQ_OPEN_SPLITS
    return tuple(split for split in SPLITS if (Path(data.path) / f"{split}.jsonl").is_file())


def load_qa_split(data: DataConfig, split: str, limit: int | None = None) -> list[QAExample]:
    """Questions of `split` for the configured dataset, the first `limit` of them when given."""
    if data.name in ARTICLE_SOURCES:
        examples = article_split(data).examples[split]
    elif data.name == "nq_open":
        if split not in NQ_OPEN_SPLITS:
            raise ConfigError("data.eval_split", split, f"{', '.join(NQ_OPEN_SPLITS)} for nq_open")
        examples = load_nq_open(split)
    else:
        path = Path(data.path) / f"{split}.jsonl"
        if not path.is_file():
            raise ConfigError("data.path", data.path, f"a directory containing {split}.jsonl (not found: {path})")
        examples = read_qa_jsonl(path)
    return examples[:limit] if limit is not None else examples


def articles_of(name: str, fictional_seed: int, fictional_entities: int, path: str | None) -> tuple[dict, ...]:
    """The SQuAD-shaped articles of an article dataset or corpus (`ARTICLE_SOURCES`): the bundled SQuAD dev, the
    fictional set generated from `fictional_seed` with `fictional_entities` entities, or the documents in `path`."""
    if name == "squad":
        return load_squad_articles()
    if name == "fictional":
        return fictional_articles(fictional_seed, fictional_entities)
    if name == "documents":
        return documents_articles(path)
    raise ConfigError("data.name", name, f"one of {', '.join(ARTICLE_SOURCES)} (a dataset of articles)")


def data_articles(data: DataConfig) -> tuple[dict, ...]:
    """The articles of the configured article dataset."""
    return articles_of(data.name, data.fictional_seed, data.fictional_entities, data.path)


def article_split(data: DataConfig) -> SquadSplit:
    """The by-article split `data` configures (SQuAD, fictional or documents: by `splits.json` where it has one)."""
    return split_squad(
        data.split_seed,
        data.validation_articles,
        data.test_articles,
        data.seen_holdout,
        articles=data_articles(data),
        test_train_fraction=data.test_train_fraction,
        dev_fraction=data.dev_fraction,
        heldout_phrasings=data.heldout_phrasings,
        chosen=documents_splits(data.path) if data.name == "documents" else None,
    )


def load_split_passages(data: DataConfig, split: str, limit: int | None = None) -> list[Passage]:
    """The paragraphs of the articles behind `split` (an article dataset), the first `limit` of them when given."""
    passages = split_passages(article_split(data), split, data_articles(data))
    return passages[:limit] if limit is not None else passages
