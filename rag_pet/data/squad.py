"""SQuAD v1.1 dev as the platform's main task, and any articles in its shape (the generated fictional set, a user's
documents): a deterministic split by article, and their paragraph corpus."""

from __future__ import annotations

import gzip
import itertools
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from rag_pet.data.resources import SQUAD_DEV
from rag_pet.data.types import Passage, QAExample
from rag_pet.errors import ConfigError


@dataclass(frozen=True)
class SquadSplit:
    """Questions per split and the article titles behind each; test and validation articles never appear in train."""

    examples: dict[str, list[QAExample]]
    articles: dict[str, list[str]]


@lru_cache(maxsize=2)
def load_squad_articles(path: Path = SQUAD_DEV) -> tuple[dict, ...]:
    """The `data[]` articles of the official SQuAD v1.1 JSON file (gzipped or plain)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return tuple(json.load(handle)["data"])


def passage_id(title: str, paragraph_index: int) -> str:
    """Stable passage id: the article title and the paragraph's position in it."""
    return f"{title}#{paragraph_index}"


def squad_corpus(path: Path = SQUAD_DEV) -> list[Passage]:
    """All paragraphs of the file (2,067 for dev) as passages, in file order."""
    return article_corpus(load_squad_articles(path))


def paragraph_id(article: dict, index: int) -> str:
    """The passage id of an article's `index`-th paragraph: its own `id` where it has one (a user's document id),
    else `passage_id`."""
    return article["paragraphs"][index].get("id") or passage_id(article["title"], index)


def article_corpus(articles: Iterable[dict]) -> list[Passage]:
    """All paragraphs of SQuAD-shaped articles as passages, in order."""
    return [
        Passage(paragraph_id(article, index), article["title"].replace("_", " "), paragraph["context"])
        for article in articles
        for index, paragraph in enumerate(article["paragraphs"])
    ]


def _article_examples(article: dict) -> list[QAExample]:
    return [
        QAExample(
            id=qa["id"],
            question=qa["question"].strip(),
            answers=tuple(answer["text"] for answer in qa["answers"]),
            gold_passage_id=paragraph_id(article, index),
            article=article["title"],
        )
        for index, paragraph in enumerate(article["paragraphs"])
        for qa in paragraph["qas"]
    ]


# The splits that only evaluate: with held-out phrasings they ask their questions in words no training question used.
EVALUATION_SPLITS = ("validation_seen", "dev", "validation", "test")
SPLIT_ARTICLES = {
    "train": "train",
    "validation_seen": "train",
    "dev": "train",
    "validation": "validation",
    "test": "test",
    "test_train": "test",
}


def split_squad(
    seed: int = 13,
    validation_articles: int = 5,
    test_articles: int = 5,
    seen_holdout: float = 0.1,
    articles: tuple[dict, ...] | None = None,
    test_train_fraction: float = 0.0,
    chosen: dict[str, list[str]] | None = None,
    dev_fraction: float = 0.0,
    heldout_phrasings: bool = False,
) -> SquadSplit:
    """Split `articles` (default: the bundled SQuAD dev) by article into train / validation / test, holding out
    `seen_holdout` of train questions (and `dev_fraction` of them as `dev`).

    `validation_seen` asks about train articles (knowledge seen in training); `dev`, drawn after it from the same
    shuffled questions, is held out from training for choosing hyperparameters (empty at 0, leaving every other
    split as it is); `validation` and `test` ask about articles no training question came from. `test_train` takes
    the first `test_train_fraction` of the test questions (to train on knowledge that arrives late), and `test`
    keeps the rest. `validation` and `test` questions are shuffled with `seed`, then taken one article at a time
    (`spread_over_articles`), so their first n questions span as many articles as they can. The validation and
    test articles are drawn with `seed`, or are the titles `chosen` names (`{"validation": [...], "test": [...]}`).
    With `heldout_phrasings` the `EVALUATION_SPLITS` ask each question in its `question_heldout` phrasing (the
    generated fictional set has one for every question), so no evaluation question is worded as a training one.
    """
    articles = sorted(load_squad_articles() if articles is None else articles, key=lambda article: article["title"])
    if chosen is None:
        groups = _drawn_groups(articles, seed, validation_articles, test_articles)
    else:
        groups = {name: [a for a in articles if a["title"] in chosen[name]] for name in ("test", "validation")}
        taken = {*chosen["test"], *chosen["validation"]}
        groups["train"] = [a for a in articles if a["title"] not in taken]
    examples = {name: [ex for article in group for ex in _article_examples(article)] for name, group in groups.items()}
    train = examples["train"]
    random.Random(seed + 1).shuffle(train)
    held_out = int(round(len(train) * seen_holdout))
    dev_end = held_out + int(round(len(train) * dev_fraction))
    examples["validation_seen"], examples["dev"] = train[:held_out], train[held_out:dev_end]
    examples["train"] = train[dev_end:]
    for name in ("validation", "test"):
        random.Random(seed + 2).shuffle(examples[name])
        examples[name] = spread_over_articles(examples[name])
    moved = int(round(len(examples["test"]) * test_train_fraction))
    examples["test_train"], examples["test"] = examples["test"][:moved], examples["test"][moved:]
    if heldout_phrasings:
        examples |= {name: _reworded(examples[name], articles) for name in EVALUATION_SPLITS}
    titles = {name: sorted(article["title"] for article in group) for name, group in groups.items()}
    return SquadSplit(examples=examples, articles=titles)


def _reworded(examples: list[QAExample], articles: list[dict]) -> list[QAExample]:
    """`examples` asked in their held-out phrasings; a ConfigError when an article has none."""
    heldout = {
        qa["id"]: qa.get("question_heldout")
        for article in articles
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }
    missing = [example.id for example in examples if not heldout[example.id]]
    if missing:
        raise ConfigError(
            "data.heldout_phrasings",
            True,
            f"false for articles without a held-out phrasing of each question (question {missing[0]} has no"
            " `question_heldout`)",
        )
    return [replace(example, question=heldout[example.id].strip()) for example in examples]


def spread_over_articles(examples: list[QAExample]) -> list[QAExample]:
    """`examples` reordered in rounds, one question of every article per round (articles and questions in their
    given order): the first n questions of a split then come from as many articles as n allows, and a study samples
    articles, so intervals and tests over n questions have that many units."""
    by_article: dict[str | None, list[QAExample]] = {}
    for example in examples:
        by_article.setdefault(example.article, []).append(example)
    rounds = itertools.zip_longest(*by_article.values())
    return [example for round_ in rounds for example in round_ if example is not None]


def _drawn_groups(articles: list[dict], seed: int, validation: int, test: int) -> dict[str, list[dict]]:
    """`test`, `validation` and (the rest) `train` articles drawn with `seed` from the sorted `articles`."""
    if validation + test >= len(articles):
        raise ConfigError(
            "data.validation_articles",
            validation,
            f"fewer, so that with data.test_articles={test} some of the {len(articles)} articles are left for training",
        )
    articles = list(articles)
    random.Random(seed).shuffle(articles)
    return {
        "test": articles[:test],
        "validation": articles[test : test + validation],
        "train": articles[test + validation :],
    }


def split_passages(split: SquadSplit, name: str, articles: tuple[dict, ...] | None = None) -> list[Passage]:
    """The paragraphs of the articles (default: the bundled SQuAD dev) behind split `name` (`test_train` and
    `test`: the test articles), in file order."""
    titles = set(split.articles[SPLIT_ARTICLES[name]])
    chosen = [a for a in (load_squad_articles() if articles is None else articles) if a["title"] in titles]
    return article_corpus(chosen)
