"""The data section of a config: which QA set, its splits and sizes, and how its articles are read (phrasings,
questions mixed into the text), with the check that a corpus built from the data's own articles holds them."""

from __future__ import annotations

from dataclasses import dataclass

from rag_pet.config.articles import (
    ARTICLE_SOURCES,
    FICTIONAL_ENTITIES,
    FICTIONAL_SEED,
    check_fictional_entities,
    documents_folder,
)
from rag_pet.config.checks import one_of, positive
from rag_pet.config.retrieval import CorpusConfig
from rag_pet.errors import ConfigError

DATASETS = (*ARTICLE_SOURCES, "nq_open", "jsonl")
SPLITS = ("train", "validation_seen", "validation", "test", "test_train", "dev")
TRAIN_ON = ("questions", "passages", "corpus")
MIXED_QUESTIONS = ("none", "train", "facts")
MAX_PHRASINGS = 5  # rag_pet.data.fictional_text.PHRASINGS
TEMPLATES = ("closed_book",)


@dataclass
class DataConfig:
    """Which QA task to train and evaluate on, how it is split, and how prompts are built.

    Article datasets (`squad`; `fictional`, `fictional_entities` invented entities generated from
    `fictional_seed`; `documents`, the user's folder at `path`, see rag_pet/data/documents.py) split by article:
    `train`, `validation` and `test` articles (a documents folder's `splits.json` may name the last two), with
    `seen_holdout` of the train articles' questions held out as `validation_seen` and `dev_fraction` of them as
    `dev` (for choosing hyperparameters; 0: no dev split, the other splits as without it); `test_train_fraction` of
    the test articles' questions move to `test_train` (question-answer pairs about new articles to train on, the
    rest of `test` to evaluate). With `train_on=passages` closed-book training reads the paragraphs of the
    `train_split` articles as plain text (language modelling, each cut to `max_text_tokens`) instead of
    question-answer pairs; with `train_on=corpus` every passage of the `corpus` section, the passages an index over
    it holds.

    Knowledge injection (Allen-Zhu & Li 2023, arXiv 2309.14316; Mecklenburg et al. 2024, arXiv 2404.00213), for the
    generated fictional set (and a documents folder that brings its own, rag_pet/data/document_injection.py):
    `heldout_phrasings` asks the evaluation splits' questions in phrasings no training question uses. Text training
    reads each paragraph in `phrasings` different phrasings of its facts, with its sentences shuffled
    (`permute_sentences`) and the entity named in full in every sentence (`full_names`; fictional only); and
    (`mixed_questions`) question-answer pairs interleaved with the texts in the same run (in batches of like
    length that alternate through every pass): the `train` split's questions, or `facts`, the fact questions of
    every text's article in training phrasing (the first `max_mixed_questions` of them when set).
    """

    name: str = "squad"
    path: str | None = None
    fictional_seed: int = FICTIONAL_SEED
    fictional_entities: int = FICTIONAL_ENTITIES
    split_seed: int = 13
    validation_articles: int = 5
    test_articles: int = 5
    seen_holdout: float = 0.1
    test_train_fraction: float = 0.0
    dev_fraction: float = 0.0
    train_split: str = "train"
    eval_split: str = "validation"
    train_on: str = "questions"
    max_train_examples: int | None = None
    max_eval_examples: int | None = 200
    template: str = "closed_book"
    chat_template: bool = False
    max_prompt_tokens: int = 64
    max_answer_tokens: int = 16
    max_text_tokens: int = 256
    heldout_phrasings: bool = False
    phrasings: int = 1
    permute_sentences: bool = False
    full_names: bool = False
    mixed_questions: str = "none"
    max_mixed_questions: int | None = None

    def __post_init__(self) -> None:
        one_of("data.name", self.name, DATASETS)
        if self.name == "jsonl" and not self.path:
            raise ConfigError("data.path", self.path, "a directory holding train.jsonl and validation.jsonl")
        if self.name == "documents":
            self.path = documents_folder("data.path", self.path)
        check_fictional_entities("data.fictional_entities", self.fictional_entities)
        one_of("data.train_split", self.train_split, SPLITS)
        one_of("data.eval_split", self.eval_split, SPLITS)
        one_of("data.template", self.template, TEMPLATES)
        positive("data.validation_articles", self.validation_articles)
        positive("data.test_articles", self.test_articles)
        if not 0.0 <= self.seen_holdout < 1.0:
            raise ConfigError("data.seen_holdout", self.seen_holdout, "a fraction in [0, 1)")
        if not 0.0 <= self.test_train_fraction < 1.0:
            raise ConfigError("data.test_train_fraction", self.test_train_fraction, "a fraction in [0, 1)")
        if not 0.0 <= self.dev_fraction < 1.0 - self.seen_holdout:
            raise ConfigError("data.dev_fraction", self.dev_fraction, f"a fraction in [0, {1 - self.seen_holdout:g})")
        one_of("data.train_on", self.train_on, TRAIN_ON)
        if self.train_on == "passages" and self.name not in ARTICLE_SOURCES:
            raise ConfigError(
                "data.train_on", "passages", f"questions unless data.name is one of {', '.join(ARTICLE_SOURCES)}"
            )
        for name in ("max_train_examples", "max_eval_examples", "max_mixed_questions"):
            value = getattr(self, name)
            if value is not None:
                positive(f"data.{name}", value)
        positive("data.max_prompt_tokens", self.max_prompt_tokens)
        positive("data.max_answer_tokens", self.max_answer_tokens)
        positive("data.max_text_tokens", self.max_text_tokens)
        self._check_injection()

    def _check_injection(self) -> None:
        if self.heldout_phrasings and self.name not in ("fictional", "documents"):
            raise ConfigError(
                "data.heldout_phrasings", True, "false unless data.name is fictional or documents (question_heldout)"
            )
        if not 1 <= self.phrasings <= MAX_PHRASINGS:
            raise ConfigError("data.phrasings", self.phrasings, f"a number of phrasings from 1 to {MAX_PHRASINGS}")
        if self.phrasings > 1 and self.name not in ("fictional", "documents"):
            raise ConfigError("data.phrasings", self.phrasings, "1 unless data=fictional or documents (paraphrases)")
        for name in ("permute_sentences", "full_names"):
            if getattr(self, name) and self.name != "fictional":
                raise ConfigError(f"data.{name}", True, "false unless data=fictional (it writes its own sentences)")
        one_of("data.mixed_questions", self.mixed_questions, MIXED_QUESTIONS)
        if self.mixed_questions == "facts" and self.name not in ("fictional", "documents"):
            raise ConfigError(
                "data.mixed_questions", "facts", "none or train unless data=fictional or documents (fact questions)"
            )
        if self.mixed_questions != "none" and self.train_on == "questions":
            raise ConfigError(
                "data.mixed_questions", self.mixed_questions, "none unless data.train_on is passages or corpus"
            )


def check_same_articles(data: DataConfig, corpus: CorpusConfig) -> None:
    """The corpus of the data's own article source must hold the data's very articles: the fictional set generated
    from the same seed and size, the documents of the same folder."""
    if data.name != corpus.name or data.name not in ("fictional", "documents"):
        return
    for name in ("fictional_seed", "fictional_entities") if data.name == "fictional" else ("path",):
        if getattr(corpus, name) != getattr(data, name):
            raise ConfigError(
                f"corpus.{name}",
                getattr(corpus, name),
                f"data.{name} ({getattr(data, name)}): the corpus holds the data's articles (leave it unset)",
            )
