import pytest

from rag_pet.config import DataConfig
from rag_pet.data import load_beir, load_qa_split, load_scifact, read_qa_jsonl
from rag_pet.errors import DataFormatError


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_user_jsonl_loads_with_either_answer_spelling(tmp_path):
    path = write(
        tmp_path / "train.jsonl",
        '{"question": "Q1?", "answers": ["a", "b"], "id": "x"}\n\n{"question": "Q2?", "answer": "c"}\n',
    )
    examples = read_qa_jsonl(path)
    assert [(e.id, e.answers) for e in examples] == [("x", ("a", "b")), ("train-3", ("c",))]


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        ('{"question": "ok?", "answers": ["a"]}\n{"question": "broken", \n', 2, "invalid JSON"),
        ('{"question": "ok?", "answers": ["a"]}\n{"answers": ["a"]}\n', 2, "field 'question'"),
        ('{"question": "ok?", "answers": []}\n', 1, "field 'answers'"),
        ('["not", "an", "object"]\n', 1, "expected a JSON object"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path, content, line, problem):
    path = write(tmp_path / "bad.jsonl", content)
    with pytest.raises(DataFormatError) as caught:
        read_qa_jsonl(path)
    assert caught.value.line == line
    assert f"{path}:{line}" in str(caught.value)
    assert problem in str(caught.value)


def test_jsonl_dataset_directory_by_config(tmp_path):
    write(tmp_path / "validation.jsonl", '{"question": "Q?", "answers": ["A"]}\n')
    examples = load_qa_split(DataConfig(name="jsonl", path=str(tmp_path)), "validation")
    assert examples[0].answers == ("A",)


def test_bundled_scifact_counts():
    scifact = load_scifact()
    assert len(scifact.corpus) == 5183
    assert len(scifact.queries) == 1109
    assert len(scifact.qrels["test"]) == 300 and sum(map(len, scifact.qrels["test"].values())) == 339
    assert len(scifact.qrels["train"]) == 809


def test_beir_folder_errors_name_the_file_and_line(tmp_path):
    write(tmp_path / "corpus.jsonl", '{"_id": "d1", "title": "", "text": "t"}\n')
    write(tmp_path / "queries.jsonl", '{"_id": "q1", "text": "q"}\n')
    (tmp_path / "qrels").mkdir()
    write(tmp_path / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\n")
    with pytest.raises(DataFormatError, match=r"test.tsv:2: expected 3 tab-separated columns"):
        load_beir(tmp_path)
    write(tmp_path / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    assert load_beir(tmp_path).qrels == {"test": {"q1": {"d1": 1}}}


def test_a_line_that_is_not_utf8_names_the_file_line_and_column(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"question": "ok?", "answers": ["a"]}\n{"question": "caf\xe9?", "answers": ["b"]}\n')
    with pytest.raises(DataFormatError, match=r"train.jsonl:2: not valid UTF-8 \(byte 0xe9 at column 18\)"):
        read_qa_jsonl(path)


def test_a_qrels_line_that_is_not_utf8_names_its_line(tmp_path):
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    write(folder / "corpus.jsonl", '{"_id": "d1", "title": "", "text": "a passage"}\n')
    write(folder / "queries.jsonl", '{"_id": "q1", "text": "a query"}\n')
    (folder / "qrels" / "test.tsv").write_bytes(b"query-id\tcorpus-id\tscore\nq\xff1\td1\t1\n")
    with pytest.raises(DataFormatError, match=r"test.tsv:2: not valid UTF-8"):
        load_beir(folder)
