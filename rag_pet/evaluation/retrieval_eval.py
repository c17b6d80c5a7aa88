"""Score dense (sharded index), BM25 and hybrid retrieval on a QA set's gold passages or a BEIR set's qrels."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from rag_pet.config import ARTICLE_SOURCES, CorpusConfig, DataConfig, EvalConfig, IndexSource
from rag_pet.data import Passage, load_beir, load_qa_split, load_scifact
from rag_pet.evaluation.retrieval_metrics import Qrels, retrieval_scores, to_run
from rag_pet.storage import write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)
Ranking = list[tuple[str, float]]


def queries_and_qrels(corpus: CorpusConfig, data: DataConfig, split: str) -> tuple[list[str], list[str], Qrels]:
    """(query ids, query texts, qrels) for the corpus: BEIR qrels of `split`, or each question's gold paragraph
    (`data.eval_split`) for an article corpus (SQuAD, fictional)."""
    if corpus.name in ARTICLE_SOURCES:
        examples = load_qa_split(data, data.eval_split, data.max_eval_examples)
        return (
            [e.id for e in examples],
            [e.question for e in examples],
            {e.id: {e.gold_passage_id: 1} for e in examples},
        )
    dataset = load_scifact() if corpus.name == "scifact" else load_beir(corpus.path)
    qrels = dataset.qrels[split]
    query_ids = [qid for qid in dataset.queries if qid in qrels][: data.max_eval_examples]
    return query_ids, [dataset.queries[qid] for qid in query_ids], {qid: qrels[qid] for qid in query_ids}


def dense_rankings(
    source: IndexSource, passages: list[Passage], texts: list[str], k: int, trained_dir: Path | None = None
) -> list[Ranking]:
    """Top-k from the configured index version (`index.version`; default: the newest built with this encoder, built
    now if none), after checking it fits this encoder and corpus. `trained_dir` holds towers a training run saved."""
    from rag_pet.models.rag import build_trained_encoder
    from rag_pet.retrieval.corpus import corpus_sha256
    from rag_pet.retrieval.live_index import ensure_index, open_index
    from rag_pet.retrieval.store import check_compatible
    from rag_pet.runtime import ensure_ray

    ensure_ray()
    encoder = build_trained_encoder(source.retriever, trained_dir).eval()
    version = source.index.version or ensure_index(source, trained_dir)
    index = open_index(source, version)
    try:
        check_compatible(index.manifest, encoder.dim, corpus_sha256(passages), encoder.doc_weights_hash())
        with torch.inference_mode():
            queries = np.concatenate(
                [encoder.encode_queries(texts[i : i + 64]).numpy() for i in range(0, len(texts), 64)]
            )
        result = index.search(queries, min(k, len(index)))
    finally:
        index.close()
    return [
        [(doc, float(score)) for doc, score in zip(ids, scores, strict=True) if doc]
        for ids, scores in zip(result.doc_ids, result.scores, strict=True)
    ]


def evaluate_retrieval(
    source: IndexSource,
    data: DataConfig,
    settings: EvalConfig,
    out_dir: Path,
    trained_dir: Path | None = None,
    methods: list[str] | None = None,
) -> list[dict]:
    """One row of metrics per method (default: `eval.retrieval_methods`); rankings and metrics go under `out_dir`.

    `trained_dir` holds retriever towers a training run saved; dense retrieval then uses them (and their index)."""
    from rag_pet.retrieval.bm25 import BM25Retriever
    from rag_pet.retrieval.corpus import load_corpus
    from rag_pet.retrieval.fusion import reciprocal_rank_fusion

    query_ids, texts, qrels = queries_and_qrels(source.corpus, data, settings.retrieval_split)
    passages = load_corpus(source.corpus)
    k, methods = settings.retrieval_k, methods or settings.retrieval_methods
    rankings: dict[str, list[Ranking]] = {}
    if "dense" in methods or "hybrid" in methods:
        rankings["dense"] = dense_rankings(source, passages, texts, k, trained_dir)
    if "bm25" in methods or "hybrid" in methods:
        rankings["bm25"] = BM25Retriever(passages).search(texts, k)
    if "hybrid" in methods:
        rankings["hybrid"] = [
            reciprocal_rank_fusion([d, b], k) for d, b in zip(rankings["dense"], rankings["bm25"], strict=True)
        ]
    rows = []
    for method in methods:
        run = to_run(query_ids, rankings[method])
        metrics = retrieval_scores(qrels, run)
        write_text_atomic(out_dir / f"retrieval_{method}" / "run.json", json.dumps(run))
        write_json_atomic(out_dir / f"retrieval_{method}" / "metrics.json", metrics)
        logger.info(
            "%s on %s: nDCG@10 %.4f recall@5 %.4f", method, source.corpus.name, metrics["ndcg@10"], metrics["recall@5"]
        )
        rows.append({"method": method, **metrics})
    return rows
