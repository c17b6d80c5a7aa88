"""The checks that a planned cell's data can feed it: every split it reads has questions, and its training data
fills one batch on every worker; each failure names the field to change."""

from __future__ import annotations

from rag_pet.config import ARTICLE_SOURCES, DataConfig, RagPetConfig
from rag_pet.errors import ConfigError
from rag_pet.training.batching import text_pool_size

# Per split: the field that gives it questions when it has none, the data attribute holding its value, the fix.
EMPTY_SPLIT_FIX = {
    "train": ("data.validation_articles", "validation_articles", "fewer, or articles with questions left to train on"),
    "validation_seen": ("data.seen_holdout", "seen_holdout", "a larger fraction, so that a train question is held out"),
    "validation": ("data.validation_articles", "validation_articles", "more, or validation articles with questions"),
    "test": ("data.test_articles", "test_articles", "more, or late (test) articles with questions"),
    "test_train": ("study.freshness.qa_fraction", "test_train_fraction", "a larger fraction of the late questions"),
    "dev": ("study.tune.dev_fraction", "dev_fraction", "a larger fraction, so that a training question is held out"),
}


def check_splits(data: DataConfig, splits: list[str]) -> None:
    """Refuse, naming the field, data without one of `splits` (the splits a study's cell reads) or whose split has
    no questions; reading each split also checks the data files."""
    from rag_pet.data.datasets import available_splits, load_qa_split

    missing = [split for split in splits if split not in available_splits(data)]
    if missing and data.name == "jsonl":
        raise ConfigError(
            "data.path",
            data.path,
            f"a folder holding {', '.join(s + '.jsonl' for s in missing)} (the study reads {', '.join(splits)}); or"
            " data=documents data.path=<folder of documents.jsonl and questions.jsonl>, which splits by article",
        )
    if missing:
        raise ConfigError(
            "data.name",
            data.name,
            f"a dataset with the {', '.join(missing)} split (the study reads {', '.join(splits)}): one of"
            f" {', '.join(ARTICLE_SOURCES)}, or jsonl with {missing[0]}.jsonl",
        )
    for split in splits:
        if not load_qa_split(data, split):
            name, attribute, fix = EMPTY_SPLIT_FIX[split]
            raise ConfigError(name, getattr(data, attribute), f"{fix}: the {split} split has no questions")


def check_fills_batch(cell: str, config: RagPetConfig) -> None:
    """Refuse a training cell whose data cannot give every worker one full batch (a small dataset, or the few
    paragraphs of the late articles), which would otherwise fail inside the cell."""
    from rag_pet.data.datasets import load_qa_split

    data, trainer = config.data, config.trainer
    if data.train_on == "questions":
        count = len(load_qa_split(data, data.train_split, data.max_train_examples))
        source = f"questions of the {data.train_split} split"
    else:
        count = text_pool_size(data, config.corpus)
        corpus = data.train_on == "corpus"
        source = "passages of the corpus" if corpus else f"paragraphs of the {data.train_split} split"
    if count < trainer.batch_size * trainer.num_workers:
        raise ConfigError(
            "trainer.batch_size",
            trainer.batch_size,
            f"at most {max(1, count // trainer.num_workers)} for {cell}, which trains on {count} {source}, a full"
            " batch per worker ('trainer.batch_size=N' in study.overrides); or more data",
        )
