"""The generated fictional-entity task: seeded and reproducible across processes, SQuAD-shaped with true answer
offsets, names unknown to SQuAD and to SmolLM2's vocabulary, and usable as a dataset and a corpus."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag_pet.config import CorpusConfig, DataConfig, ModelConfig
from rag_pet.config.articles import FICTIONAL_ENTITIES
from rag_pet.data import fictional_articles, load_qa_split, write_squad_json
from rag_pet.data.datasets import article_split, load_split_passages
from rag_pet.data.fictional import COMPANIES, squad_words
from rag_pet.data.squad import SPLIT_ARTICLES, load_squad_articles
from rag_pet.errors import ConfigError
from rag_pet.models.generator import build_tokenizer
from rag_pet.retrieval.corpus import load_corpus
from tests.conftest import compose_config

REPO = Path(__file__).resolve().parents[2]
DATA = DataConfig(name="fictional", validation_articles=40, test_articles=15)  # as conf/data/fictional.yaml
COMPANY_KINDS = {kind for kind, _, _ in COMPANIES}


def invented_words(articles) -> set[str]:
    """The syllable-made words of the entity names (a company's kind, e.g. "Foundry", is a real word)."""
    return {word for article in articles for word in article["title"].split("_") if word not in COMPANY_KINDS}


def test_the_same_seed_writes_the_same_bytes_in_another_process_and_another_seed_does_not(tmp_path):
    first = write_squad_json(fictional_articles(3, 12), tmp_path / "a.json")
    script = (
        "import sys; from rag_pet.data import fictional_articles as f, write_squad_json as w; w(f(3, 12), sys.argv[1])"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "b.json")],
        cwd=REPO,
        env={**os.environ, "PYTHONHASHSEED": "7"},  # set hashing would differ from this process
        check=True,
    )
    other = write_squad_json(fictional_articles(4, 12), tmp_path / "c.json")
    assert first.read_bytes() == (tmp_path / "b.json").read_bytes()
    assert first.read_bytes() != other.read_bytes()
    assert load_squad_articles(first) == fictional_articles(3, 12)  # the file reads back as SQuAD


def test_articles_are_squad_shaped_with_true_answer_offsets_and_unique_ids():
    articles = fictional_articles(0, 60)
    assert len(articles) == 60 and len({a["title"] for a in articles}) == 60
    ids = []
    for article in articles:
        assert 1 <= len(article["paragraphs"]) <= 3
        assert 3 <= sum(len(p["qas"]) for p in article["paragraphs"]) <= 6
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            assert 30 <= len(context.split()) <= 80
            for qa in paragraph["qas"]:
                ids.append(qa["id"])
                assert qa["question"].endswith("?")
                for answer in qa["answers"]:
                    start = answer["answer_start"]
                    assert context[start : start + len(answer["text"])] == answer["text"]
    assert len(ids) == len(set(ids))


def test_entity_names_are_not_in_the_squad_text():
    text = " ".join(
        " ".join([a["title"], *(p["context"] for p in a["paragraphs"])]) for a in load_squad_articles()
    ).lower()
    for seed in (0, 1):
        articles = fictional_articles(seed, 60)
        for article in articles:
            name = article["title"].replace("_", " ").lower()
            assert name not in text, name  # not even inside a longer word
        assert not {word.lower() for word in invented_words(articles)} & squad_words()


def test_entity_names_are_not_single_tokens_of_smollm2():
    tokenizer = build_tokenizer(ModelConfig(source="smollm2"))
    for word in sorted(invented_words(fictional_articles(0, 60))):
        assert len(tokenizer.tokenize(word)) > 1, word
        assert len(tokenizer.tokenize(f" {word}")) > 1, word  # as it appears mid-sentence


def test_too_few_entities_are_refused():
    with pytest.raises(ConfigError, match="data.fictional_entities"):
        fictional_articles(0, 2)


def test_the_split_puts_each_entity_in_exactly_one_of_train_validation_and_test():
    split = article_split(DATA)
    titles = [title for group in split.articles.values() for title in group]
    assert sorted(titles) == sorted(a["title"] for a in fictional_articles(0, FICTIONAL_ENTITIES))
    assert {name: len(group) for name, group in split.articles.items()} == {"train": 35, "validation": 40, "test": 15}
    for name in SPLIT_ARTICLES:
        assert {example.article for example in split.examples[name]} <= set(split.articles[SPLIT_ARTICLES[name]])


def test_every_split_and_the_corpus_load_with_every_gold_passage_in_the_corpus():
    corpus = load_corpus(CorpusConfig(name="fictional"))
    ids = {passage.id for passage in corpus}
    assert len(ids) == len(corpus) == sum(len(a["paragraphs"]) for a in fictional_articles(0, FICTIONAL_ENTITIES))
    for name in SPLIT_ARTICLES:
        examples = load_qa_split(DATA, name)
        assert all(example.gold_passage_id in ids for example in examples)
    assert len(load_qa_split(DATA, "validation", limit=5)) == 5
    test_passages = load_split_passages(DATA, "test")
    assert {p.title.replace(" ", "_") for p in test_passages} == set(article_split(DATA).articles["test"])
    other = load_corpus(CorpusConfig(name="fictional", fictional_seed=1))
    assert {p.id for p in other}.isdisjoint(ids)


def test_data_and_corpus_compose_from_the_same_generated_articles():
    config = compose_config(["debug=tiny", "data=fictional", "corpus=fictional", "data.fictional_seed=5"])
    assert config.data.name == config.corpus.name == "fictional"
    assert (config.corpus.fictional_seed, config.corpus.fictional_entities) == (5, 90)  # follows the data
    with pytest.raises(ConfigError, match="corpus.fictional_seed"):
        compose_config(["debug=tiny", "data=fictional", "corpus=fictional", "corpus.fictional_seed=6"])
    with pytest.raises(ConfigError, match="corpus.name"):  # RAG over SQuAD cannot answer fictional questions
        compose_config(["debug=tiny", "experiment=rag_frozen", "data=fictional"])


def test_a_study_holds_the_late_fictional_articles_back_from_the_first_index(tmp_path):
    from rag_pet.study.cells import plan_cells
    from rag_pet.study.spec import FreshnessConfig
    from tests.conftest import CONF_DIR
    from tests.study.test_study import tiny_study

    compare = tiny_study(
        tmp_path, "data=fictional", "corpus=fictional", methods=["rag"], seeds=[0], freshness=FreshnessConfig()
    )
    main, fresh = plan_cells(compare.study, tmp_path / "study", CONF_DIR, compare.tracking)
    late = {title.replace("_", " ") for title in article_split(main.config.data).articles["test"]}
    assert set(main.config.corpus.exclude_titles) == late and fresh.config.corpus.exclude_titles == []
