import math

import pytest

from rag_pet.evaluation.retrieval_metrics import retrieval_scores, to_run


def test_metrics_match_hand_computed_trec_eval_values():
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 1}}
    run = to_run(["q1", "q2"], [[("d9", 3.0), ("d1", 2.0)], [("d2", 5.0), ("d8", 4.0), ("d3", 1.0)]])
    scores = retrieval_scores(qrels, run, recall_at=(1, 2, 3))
    ndcg_q1 = 1 / math.log2(3)  # relevant at rank 2, ideal at rank 1
    ndcg_q2 = (1 + 1 / 2) / (1 + 1 / math.log2(3))  # ranks 1 and 3, ideal ranks 1 and 2
    assert scores["ndcg@10"] == pytest.approx((ndcg_q1 + ndcg_q2) / 2)
    assert scores["mrr@10"] == pytest.approx((1 / 2 + 1) / 2)
    assert scores["recall@1"] == pytest.approx((0 + 1 / 2) / 2)
    assert scores["recall@2"] == pytest.approx((1 + 1 / 2) / 2)
    assert scores["recall@3"] == pytest.approx(1.0)


def test_queries_without_results_count_as_zero_and_mrr_stops_at_10():
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
    run = to_run(["q1"], [[(f"x{i}", 20.0 - i) for i in range(10)] + [("d1", 1.0)]])
    scores = retrieval_scores(qrels, run, recall_at=(20,))
    assert scores["mrr@10"] == 0.0
    assert scores["recall@20"] == pytest.approx(0.5)
    assert scores["queries"] == 2
