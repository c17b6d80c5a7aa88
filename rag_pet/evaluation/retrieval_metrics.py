"""Retrieval metrics with trec_eval's definitions (via pytrec_eval, as BEIR computes them)."""

from __future__ import annotations

import pytrec_eval

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]


def to_run(query_ids: list[str], rankings: list[list[tuple[str, float]]]) -> Run:
    """A pytrec_eval run from best-first (doc id, score) lists."""
    return {
        qid: {doc: float(score) for doc, score in ranking} for qid, ranking in zip(query_ids, rankings, strict=True)
    }


def retrieval_scores(qrels: Qrels, run: Run, recall_at: tuple[int, ...] = (1, 5, 10, 20, 100)) -> dict[str, float]:
    """Mean nDCG@10, MRR@10 and recall@k over the queries of `qrels`, in [0, 1]."""
    run = {qid: docs for qid, docs in run.items() if qid in qrels}
    measures = {"ndcg_cut.10", "recall." + ",".join(map(str, recall_at))}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    top10 = {qid: dict(sorted(docs.items(), key=lambda item: -item[1])[:10]) for qid, docs in run.items()}
    reciprocal = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    count = len(qrels)  # queries with no retrieved documents score zero
    scores = {
        "ndcg@10": sum(q["ndcg_cut_10"] for q in per_query.values()) / count,
        "mrr@10": sum(q["recip_rank"] for q in reciprocal.values()) / count,
    }
    for k in recall_at:
        scores[f"recall@{k}"] = sum(q[f"recall_{k}"] for q in per_query.values()) / count
    scores["queries"] = count
    return scores
