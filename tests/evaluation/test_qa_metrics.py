import pytest

from rag_pet.evaluation import exact_match, f1, normalize_answer, qa_scores


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  a  cat and AN apple ", "cat and apple"),
        ("Denver Broncos.", "denver broncos"),
        ("theatre", "theatre"),
    ],
)
def test_normalisation_matches_the_official_script(text, normalised):
    assert normalize_answer(text) == normalised


def test_exact_match_and_f1_known_values():
    assert exact_match("the Denver Broncos", "Denver Broncos") == 1.0
    assert exact_match("Broncos", "Denver Broncos") == 0.0
    # precision 1/1, recall 1/2 -> F1 2/3 (official script's token-overlap F1)
    assert f1("Broncos", "Denver Broncos") == pytest.approx(2 / 3)
    # 2 common of 3 predicted and 4 gold tokens: P=2/3, R=1/2 -> 4/7
    assert f1("Santa Clara California", "Levi's Stadium Santa Clara") == pytest.approx(4 / 7)
    assert f1("", "Denver") == 0.0


def test_scores_take_the_best_of_several_answers():
    scores = qa_scores(["Denver Broncos", "1990"], [["Broncos", "Denver Broncos"], ["1989", "in 1991"]])
    assert scores == {"exact_match": 0.5, "f1": 0.5, "count": 2}


def test_result_tables_pick_columns_by_task():
    from rag_pet.evaluation import format_table

    qa = format_table([{"method": "lora", "exact_match": 0.5, "f1": 0.625, "trainable_params": 1000}])
    assert qa.splitlines()[2].split() == ["lora", "0.500", "0.625", "1,000", "-"]
    retrieval = format_table([{"method": "bm25", "ndcg@10": 0.68630, "recall@1": 0.5, "queries": 300}])
    assert retrieval.splitlines()[0].split()[:3] == ["method", "nDCG@10", "MRR@10"]
    assert retrieval.splitlines()[2].split() == ["bm25", "0.6863", "-", "0.5000", "-", "-", "-", "300"]
