"""A user's documents and questions (`data=documents`, `corpus=documents`): SQuAD-shaped articles split by title
(drawn, or as splits.json says), the documents as the corpus with their own ids, and each bad input one line."""

import json
from pathlib import Path

import pytest

from rag_pet.config import CorpusConfig, DataConfig
from rag_pet.data import load_qa_split
from rag_pet.data.datasets import article_split, load_split_passages
from rag_pet.data.documents import documents_articles
from rag_pet.data.squad import SPLIT_ARTICLES
from rag_pet.errors import ConfigError, DataFormatError
from rag_pet.retrieval.corpus import load_corpus
from rag_pet.training.batching import mixed_questions, training_texts
from tests.conftest import CONF_DIR, compose_config

TITLES = [f"Place {name}" for name in "ABCDEFGHI"]
EXAMPLE = Path(__file__).parent / "resources" / "documents"  # the README's example folder
EXAMPLE_BEIR = EXAMPLE.with_name("documents_beir")  # the same with a BEIR corpus.jsonl for documents.jsonl


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


def documents_folder(folder: Path) -> Path:
    """9 titles, odd ones of two documents, with 2 or 3 questions each (the third asks about the second document)."""
    folder.mkdir(parents=True, exist_ok=True)
    documents, questions = [], []
    for i, title in enumerate(TITLES):
        documents.append({"id": f"d{i}a", "title": title, "text": f"{title} was founded by Founder{i} in {1900 + i}."})
        questions += [
            {"id": f"q{i}a", "question": f"Who founded {title}?", "answers": [f"Founder{i}"], "document_id": f"d{i}a"},
            {"question": f"When was {title} founded?", "answers": [str(1900 + i)], "document_id": f"d{i}a"},
        ]
        if i % 2:
            documents.append({"id": f"d{i}b", "title": title, "text": f"The Flow{i} is its river. Flow{i} is wide."})
            questions.append({"question": "Which river?", "answers": [f"Flow{i}", "a lake"], "document_id": f"d{i}b"})
    write_jsonl(folder / "documents.jsonl", documents)
    write_jsonl(folder / "questions.jsonl", questions)
    return folder


def data_of(folder: Path, **fields) -> DataConfig:
    """The folder as data=documents with 2 validation and 2 test articles, unless `fields` say otherwise."""
    return DataConfig(
        **{"name": "documents", "path": str(folder), "validation_articles": 2, "test_articles": 2} | fields
    )


def test_articles_keep_file_order_and_answers_start_where_they_first_occur(tmp_path):
    articles = documents_articles(documents_folder(tmp_path))
    assert [article["title"] for article in articles] == TITLES
    second = articles[1]["paragraphs"]
    assert [paragraph["id"] for paragraph in second] == ["d1a", "d1b"]
    answers = second[1]["qas"][0]["answers"]
    assert answers == [{"text": "Flow1", "answer_start": 4}, {"text": "a lake", "answer_start": -1}]  # not a span
    assert second[0]["qas"][1]["id"] == "questions-4"  # no id: the file's stem and line


def test_every_split_loads_by_title_and_every_gold_document_is_in_the_corpus(tmp_path):
    data = data_of(documents_folder(tmp_path), test_train_fraction=0.5, dev_fraction=0.2)
    split = article_split(data)
    assert {name: len(titles) for name, titles in split.articles.items()} == {"test": 2, "validation": 2, "train": 5}
    assert sorted(title for titles in split.articles.values() for title in titles) == TITLES
    corpus = load_corpus(CorpusConfig(name="documents", path=data.path))
    ids = {passage.id for passage in corpus}
    assert len(ids) == len(corpus) == 13 and "d1b" in ids  # the documents' own ids
    asked = []
    for name in SPLIT_ARTICLES:
        examples = load_qa_split(data, name)
        assert examples, name
        assert {e.article for e in examples} <= set(split.articles[SPLIT_ARTICLES[name]]), name
        assert all(e.gold_passage_id in ids for e in examples), name
        asked += [e.id for e in examples]
    assert len(asked) == len(set(asked)) == 9 * 2 + 4
    late = load_split_passages(data, "test")
    assert {p.title for p in late} == set(split.articles["test"]) and {p.id for p in late} <= ids


def test_splits_json_names_the_validation_and_test_articles(tmp_path):
    folder = documents_folder(tmp_path)
    (folder / "splits.json").write_text(json.dumps({"validation": ["Place I"], "test": ["Place A", "Place B"]}))
    split = article_split(data_of(folder, validation_articles=5, test_articles=5))  # counts do not apply
    assert split.articles["validation"] == ["Place I"] and split.articles["test"] == ["Place A", "Place B"]
    assert {e.article for e in load_qa_split(data_of(folder), "test")} == {"Place A", "Place B"}


def test_data_and_corpus_compose_from_the_same_folder(tmp_path, monkeypatch):
    folder = documents_folder(tmp_path / "docs")
    monkeypatch.chdir(tmp_path)  # a relative path is made absolute: cells and workers run elsewhere
    config = compose_config(["debug=tiny", "data=documents", "data.path=docs", "corpus=documents"])
    assert config.data.path == config.corpus.path == str(folder)
    with pytest.raises(ConfigError, match="corpus.path=.*the corpus holds the data's articles"):
        compose_config(["debug=tiny", "data=documents", "data.path=docs", "corpus=documents", "corpus.path=/tmp"])
    with pytest.raises(ConfigError, match=r"corpus.name='squad' .*corpus=documents"):  # RAG over another's articles
        compose_config(["debug=tiny", "experiment=rag_frozen", "data=documents", "data.path=docs"])
    with pytest.raises(ConfigError, match="data.path=None .*documents.jsonl and questions.jsonl"):
        DataConfig(name="documents")


def test_the_example_folder_of_the_readme_loads():
    overrides = ["data=documents", f"data.path={EXAMPLE}", "data.test_train_fraction=0.5", "data.dev_fraction=0.2"]
    data = compose_config(overrides).data
    assert article_split(data).articles["test"] == ["Dunmere Regatta", "Pellow Observatory"]  # its splits.json
    assert all(load_qa_split(data, name) for name in SPLIT_ARTICLES)


def test_a_beir_folder_gives_the_articles_and_questions_of_the_same_documents_jsonl_folder():
    assert documents_articles(EXAMPLE_BEIR) == documents_articles(EXAMPLE)
    for split in SPLIT_ARTICLES:
        beir, plain = (data_of(folder, test_train_fraction=0.5) for folder in (EXAMPLE_BEIR, EXAMPLE))
        assert load_qa_split(beir, split) == load_qa_split(plain, split), split


def test_the_corpus_of_a_beir_folder_is_its_documents_under_their_ids():
    ids = [json.loads(line)["_id"] for line in (EXAMPLE_BEIR / "corpus.jsonl").read_text().splitlines()]
    corpus = load_corpus(CorpusConfig(name="documents", path=str(EXAMPLE_BEIR)))
    assert sorted(passage.id for passage in corpus) == sorted(ids) and len(ids) == 18
    assert corpus == load_corpus(CorpusConfig(name="documents", path=str(EXAMPLE)))


def test_a_beir_document_without_a_title_is_an_article_of_its_own(tmp_path):
    documents = [
        {"_id": "a1", "title": "Harbour", "text": "The harbour opened in 1850.", "metadata": {"url": "x"}},
        {"_id": "n1", "title": "", "text": "Nine ships sank in 1901."},
        {"_id": "n2", "text": "The bell rings twice."},  # no title at all
        {"_id": "a2", "title": "Harbour", "text": "Its pier is 300 m long."},
    ]
    write_jsonl(tmp_path / "corpus.jsonl", documents)
    asked = [("n1", "How many ships sank?", "Nine"), ("a2", "How long is the pier?", "300 m")]
    write_jsonl(tmp_path / "questions.jsonl", [{"question": q, "answers": [a], "document_id": d} for d, q, a in asked])
    articles = {article["title"]: article["paragraphs"] for article in documents_articles(tmp_path)}
    assert {title: [p["id"] for p in paragraphs] for title, paragraphs in articles.items()} == {
        "Harbour": ["a1", "a2"],
        "n1": ["n1"],
        "n2": ["n2"],
    }
    assert [qa["question"] for qa in articles["n1"][0]["qas"]] == ["How many ships sank?"]
    assert [qa["answers"][0]["answer_start"] for qa in articles["Harbour"][1]["qas"]] == [12]


def test_a_changed_beir_corpus_is_read_again_and_changes_the_data_hash(tmp_path):
    from rag_pet.study.provenance import data_files, data_sha256

    for name in ("corpus.jsonl", "questions.jsonl"):
        (tmp_path / name).write_bytes((EXAMPLE_BEIR / name).read_bytes())
    data = data_of(tmp_path)
    before, texts = data_sha256(data), load_corpus(CorpusConfig(name="documents", path=str(tmp_path)))
    assert tmp_path / "corpus.jsonl" in data_files(data)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(corpus.read_text().replace("Tamsin Veery", "Tamsin A. Veery"))  # its size changes too
    after = load_corpus(CorpusConfig(name="documents", path=str(tmp_path)))
    assert [p.text for p in after] != [p.text for p in texts] and "Tamsin A. Veery" in after[0].text
    assert data_sha256(data) != before


BEIR_DOC = {"_id": "d", "title": "T", "text": "text"}


@pytest.mark.parametrize(
    ("documents", "questions", "error"),
    [
        ([BEIR_DOC], [{"question": "q?", "answers": ["a"], "document_id": "x"}], r"'x' is no id in corpus.jsonl"),
        ([{"id": "d", "title": "T", "text": "t"}], None, r"corpus.jsonl:1: field '_id' must be a non-empty string"),
        ([{**BEIR_DOC, "title": 7}], None, r"corpus.jsonl:1: field 'title' must be a string, got 7"),
        ([BEIR_DOC, {**BEIR_DOC, "title": "U"}], None, r"corpus.jsonl:2: _id 'd' is also the _id of line 1"),
        ([BEIR_DOC, {"_id": "T", "title": "", "text": "t"}], None, r"corpus.jsonl:2: _id 'T' has no title but is"),
    ],
)
def test_a_bad_beir_corpus_is_one_line_naming_the_file_line_and_field(tmp_path, documents, questions, error):
    write_jsonl(tmp_path / "corpus.jsonl", documents)
    write_jsonl(tmp_path / "questions.jsonl", questions or [{"question": "q?", "answers": ["a"], "document_id": "d"}])
    with pytest.raises(DataFormatError, match=error) as raised:
        documents_articles(tmp_path)
    assert "\n" not in str(raised.value)


def test_a_folder_with_both_documents_jsonl_and_corpus_jsonl_is_refused_naming_both(tmp_path):
    for name in ("corpus.jsonl", "questions.jsonl"):
        (tmp_path / name).write_bytes((EXAMPLE_BEIR / name).read_bytes())
    (tmp_path / "documents.jsonl").write_bytes((EXAMPLE / "documents.jsonl").read_bytes())
    message = r"data error: .*: holds both documents.jsonl and corpus.jsonl; keep the one whose ids questions.jsonl"
    with pytest.raises(DataFormatError, match=message) as raised:
        load_corpus(CorpusConfig(name="documents", path=str(tmp_path)))
    assert "\n" not in str(raised.value)


DOC = {"id": "d", "title": "T", "text": "text"}
QUESTION = {"question": "q?", "answers": ["text"], "document_id": "d"}


@pytest.mark.parametrize(
    ("documents", "questions", "error"),
    [
        (None, [QUESTION], r"documents.jsonl: file not found; data.path must be a folder holding"),
        ([DOC], None, r"questions.jsonl: file not found"),
        (json.dumps(DOC) + '\n{"id": "e", ', [QUESTION], r"documents.jsonl:2: invalid JSON"),
        ([DOC, {"id": "e", "text": "x"}], [QUESTION], r"documents.jsonl:2: field 'title' must be a non-empty string"),
        ([DOC, {**DOC, "title": "U"}], [QUESTION], r"documents.jsonl:2: id 'd' is also the id of line 1"),
        ([DOC], [QUESTION, {**QUESTION, "document_id": "x"}], r"questions.jsonl:2: document_id 'x' is no id in"),
        ([DOC], [{"question": "q?", "answers": ["a"]}], r"questions.jsonl:1: field 'document_id' must be"),
        ([DOC], [{**QUESTION, "answers": []}], r"questions.jsonl:1: field 'answers' must be a non-empty list"),
        ([DOC], [{**QUESTION, "id": "1"}, {**QUESTION, "id": "1"}], r"questions.jsonl:2: id '1' is also the id of"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_file_line_and_field(tmp_path, documents, questions, error):
    for name, content in (("documents.jsonl", documents), ("questions.jsonl", questions)):
        if isinstance(content, str):
            (tmp_path / name).write_text(content)
        elif content is not None:
            write_jsonl(tmp_path / name, content)
    with pytest.raises(DataFormatError, match=error) as raised:
        load_qa_split(data_of(tmp_path), "train")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("splits", "error"),
    [
        ('{"validation": ["Place A"], "test": [', r"splits.json:1: invalid JSON"),
        ({"validation": ["Place A"]}, r"splits.json: expected \{\"validation\""),
        ({"validation": ["Place A"], "test": []}, r"'test' must be a non-empty list of titles"),
        ({"validation": ["Place A"], "test": ["Place Z"]}, r"'test' names 'Place Z', no title in documents.jsonl"),
        ({"validation": ["Place A"], "test": ["Place A"]}, r"'Place A' is in both 'validation' and 'test'"),
        ({"validation": TITLES[:5], "test": TITLES[5:]}, r"every title is in 'validation' or 'test'"),
    ],
)
def test_a_bad_splits_file_is_one_line(tmp_path, splits, error):
    folder = documents_folder(tmp_path)
    (folder / "splits.json").write_text(splits if isinstance(splits, str) else json.dumps(splits))
    with pytest.raises(DataFormatError, match=error) as raised:
        load_qa_split(data_of(folder), "test")
    assert "\n" not in str(raised.value)


def test_too_few_titles_for_the_requested_articles_names_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"data.validation_articles=5 .*with data.test_articles=4 .* 9 articles"):
        load_qa_split(data_of(documents_folder(tmp_path), validation_articles=5, test_articles=4), "train")


def test_a_study_holds_the_late_documents_back_and_refuses_data_without_its_splits(tmp_path):
    from rag_pet.study.cells import plan_cells
    from rag_pet.study.spec import FreshnessConfig
    from tests.study.test_study import tiny_study

    folder = documents_folder(tmp_path / "docs")
    (folder / "splits.json").write_text(json.dumps({"validation": ["Place I"], "test": ["Place A", "Place B"]}))
    documents = ["data=documents", f"data.path={folder}", "corpus=documents"]
    compare = tiny_study(tmp_path, *documents, methods=["rag"], seeds=[0], freshness=FreshnessConfig())
    main, fresh = plan_cells(compare.study, tmp_path / "study", CONF_DIR, compare.tracking)
    assert main.config.corpus.exclude_titles == ["Place A", "Place B"] and fresh.config.corpus.exclude_titles == []
    assert main.config.corpus.path == str(folder)
    compare.study.methods = ["lora"]  # its fresh_text cell trains on the 3 paragraphs of Place A and Place B
    with pytest.raises(ConfigError, match=r"trainer.batch_size=4 .*fresh_text, which trains on 3 paragraphs"):
        plan_cells(compare.study, tmp_path / "study", CONF_DIR, compare.tracking)

    questions = tmp_path / "jsonl"
    questions.mkdir()
    for split in ("train", "validation"):  # no validation_seen.jsonl, which every study scores
        write_jsonl(questions / f"{split}.jsonl", [{"question": "q?", "answers": ["a"]}])
    compare = tiny_study(tmp_path, "data=jsonl", f"data.path={questions}", methods=["zero_shot"], seeds=[0])
    with pytest.raises(ConfigError, match=r"data.path=.*a folder holding validation_seen.jsonl \(the study reads"):
        plan_cells(compare.study, tmp_path / "study", CONF_DIR, compare.tracking)
    compare.study.freshness = FreshnessConfig()
    with pytest.raises(ConfigError, match=r"study.freshness.enabled=True .*documents"):
        plan_cells(compare.study, tmp_path / "study", CONF_DIR, compare.tracking)


# A whole study (with -m slow); the default suite checks the documents' reading, splits, corpus and plan.
@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
def test_a_study_over_the_documents_retrieves_only_them_and_takes_the_late_ones_in(tmp_path):
    from rag_pet.evaluation.steps import eval_folder
    from rag_pet.study.flow import run_study
    from rag_pet.study.spec import FreshnessConfig
    from tests.study.test_study import tiny_study

    folder = documents_folder(tmp_path / "docs")
    documents = ["data=documents", f"data.path={folder}", "corpus=documents"]
    compare = tiny_study(tmp_path, *documents, methods=["rag"], seeds=[0], freshness=FreshnessConfig())
    compare.study.latency_questions = compare.study.forgetting_texts = 0
    summary = run_study(compare, CONF_DIR)
    assert summary["failed"] == []

    cells = tmp_path / "study" / "cells"
    late = set(article_split(compare_data(cells / "rag.json")).articles["test"])
    late_ids = {p.id for p in load_corpus(CorpusConfig(name="documents", path=str(folder))) if p.title in late}

    def retrieved(cell: str, label: str) -> set[str]:
        rows = (cells / cell / "eval" / eval_folder(label) / "predictions.jsonl").read_text().splitlines()
        assert rows, cell
        return {passage for row in rows for passage in json.loads(row)["retrieved"]}

    ids = {p.id for p in load_corpus(CorpusConfig(name="documents", path=str(folder)))}
    first = retrieved("rag", "rag") | retrieved("rag", "rag@test")
    assert first and first <= ids - late_ids  # the user's documents, without the late ones
    grown = retrieved("rag.fresh_index", "rag")
    assert grown <= ids and grown & late_ids  # the late documents arrived in the grown index
    shared = json.loads((tmp_path / "study" / "shared.json").read_text())
    (entry,) = shared.values()
    assert entry["index"].startswith("documents_") and entry["fresh"]["passages_added"] == len(late_ids)


def compare_data(record: Path) -> DataConfig:
    """The data section a study cell ran with, from its record."""
    return DataConfig(**json.loads(record.read_text())["config"]["data"])


def test_a_documents_folder_supplies_paraphrases_fact_questions_and_held_out_phrasings(tmp_path):
    folder = documents_folder(tmp_path)
    questions = [json.loads(line) for line in (folder / "questions.jsonl").read_text().splitlines()]
    for question in questions:
        question["question_heldout"] = "In other words: " + question["question"]
    write_jsonl(folder / "questions.jsonl", questions)
    documents = [json.loads(line) for line in (folder / "documents.jsonl").read_text().splitlines()]
    write_jsonl(
        folder / "paraphrases.jsonl",
        [{"document_id": d["id"], "text": f"Paraphrase {n} of {d['text']}"} for d in documents for n in (1, 2)],
    )
    write_jsonl(
        folder / "fact_questions.jsonl",
        [{"document_id": "d0a", "question": "Who started Place A?", "answers": ["Founder0"]}],
    )
    data = data_of(folder, heldout_phrasings=True, train_on="corpus", phrasings=3, mixed_questions="facts")
    corpus = CorpusConfig(name="documents", path=str(folder))
    texts = training_texts(data, corpus)
    assert [p.id for p in texts[:3]] == ["d0a~0", "d0a~1", "d0a~2"] and len(texts) == 3 * len(documents)
    assert texts[0].text == documents[0]["text"] and texts[2].text.startswith("Paraphrase 2 of")
    assert [q.question for q in mixed_questions(data, texts)] == ["Who started Place A?"]
    assert all(q.question.startswith("In other words") for q in load_qa_split(data, "validation"))
    assert not any(q.question.startswith("In other words") for q in load_qa_split(data, "train"))
    with pytest.raises(DataFormatError, match="data.phrasings=4 needs 3"):
        training_texts(data_of(folder, train_on="corpus", phrasings=4), corpus)
