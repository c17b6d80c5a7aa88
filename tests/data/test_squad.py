from collections import Counter

from rag_pet.config import DataConfig
from rag_pet.data import load_qa_split, split_squad, squad_corpus
from rag_pet.data.squad import load_squad_articles, spread_over_articles
from rag_pet.data.types import QAExample

# Documented in README.md ("Data"): seed 13, 5 test and 5 validation articles, 10 % of train questions held out.
EXPECTED_ARTICLES = {"train": 38, "validation": 5, "test": 5}
EXPECTED_QUESTIONS = {"train": 7727, "validation_seen": 858, "validation": 1070, "test": 915, "test_train": 0, "dev": 0}


def test_split_counts_are_the_documented_ones():
    split = split_squad()
    assert {name: len(titles) for name, titles in split.articles.items()} == EXPECTED_ARTICLES
    assert {name: len(examples) for name, examples in split.examples.items()} == EXPECTED_QUESTIONS
    # the splits partition the file's questions: each one in exactly one split
    in_file = [qa["id"] for article in load_squad_articles() for p in article["paragraphs"] for qa in p["qas"]]
    in_splits = [example.id for examples in split.examples.values() for example in examples]
    assert sorted(in_splits) == sorted(in_file) and len(in_file) == 10570


def test_split_is_disjoint_by_article():
    split = split_squad()
    article_of = lambda example: example.gold_passage_id.split("#")[0]  # noqa: E731
    seen = {name: {article_of(ex) for ex in split.examples[name]} for name in EXPECTED_QUESTIONS}
    assert seen["train"] == seen["validation_seen"] == set(split.articles["train"])
    assert seen["validation"] == set(split.articles["validation"])
    assert seen["test"] == set(split.articles["test"])
    assert not seen["train"] & seen["validation"]
    assert not seen["train"] & seen["test"]
    assert not seen["validation"] & seen["test"]
    ids = {name: {ex.id for ex in examples} for name, examples in split.examples.items()}
    assert not ids["train"] & ids["validation_seen"]


def test_split_is_deterministic_and_seeded():
    assert split_squad().articles == split_squad().articles
    assert split_squad(seed=7).articles["test"] != split_squad().articles["test"]


def test_corpus_has_every_paragraph_with_stable_unique_ids():
    corpus = squad_corpus()
    assert len(corpus) == 2067
    ids = {passage.id for passage in corpus}
    assert len(ids) == 2067
    assert corpus[0].id.endswith("#0") and corpus[0].text
    gold = {ex.gold_passage_id for examples in split_squad().examples.values() for ex in examples}
    assert gold <= ids


def test_load_qa_split_limits_and_nq_open():
    assert len(load_qa_split(DataConfig(), "validation", limit=5)) == 5
    nq = load_qa_split(DataConfig(name="nq_open"), "validation")
    assert len(nq) == 1800 and nq[0].answers


def test_test_train_takes_a_fraction_of_the_test_questions_and_test_keeps_the_rest():
    whole = split_squad().examples["test"]
    split = split_squad(test_train_fraction=0.5)
    assert len(split.examples["test_train"]) == round(len(whole) * 0.5)
    assert split.examples["test_train"] + split.examples["test"] == whole
    assert split_squad().examples["test_train"] == []


def test_split_passages_are_the_paragraphs_of_the_splits_articles():
    from rag_pet.data.squad import split_passages

    split = split_squad()
    titles = {title.replace("_", " ") for title in split.articles["test"]}
    passages = split_passages(split, "test_train")
    assert passages == split_passages(split, "test")
    assert {p.title for p in passages} == titles
    assert {p.id for p in passages} >= {ex.gold_passage_id for ex in split.examples["test"]}


def test_evaluation_questions_are_taken_one_article_at_a_time():
    split = split_squad(13, 20, 5)
    validation = split.examples["validation"]
    first = validation[:20]
    assert len({example.article for example in first}) == 20  # 20 questions from 20 articles, not from 1 or 2
    assert sorted(e.id for e in validation) == sorted(e.id for e in split_squad(13, 20, 5).examples["validation"])
    counts = Counter(example.article for example in validation[:45])
    assert max(counts.values()) - min(counts.values()) <= 1  # every round takes one question of each article
    examples = [QAExample(f"q{i}", "?", ("a",), article=article) for i, article in enumerate("aabac")]
    assert [e.id for e in spread_over_articles(examples)] == ["q0", "q2", "q4", "q1", "q3"]
