"""Score answers to QA examples (EM/F1, gold-passage recall, latency) and write predictions and metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from rag_pet.config import ARTICLE_SOURCES, DataConfig, EvalConfig
from rag_pet.data.datasets import data_articles
from rag_pet.data.prompts import PromptEncoder
from rag_pet.data.squad import article_corpus
from rag_pet.data.types import QAExample
from rag_pet.evaluation.answer_nll import AnswerScorer
from rag_pet.evaluation.latency import QuestionTiming, batch1_summary, latency_summary
from rag_pet.evaluation.qa_metrics import best_over_answers, exact_match, f1, qa_scores
from rag_pet.evaluation.runners import AnswerFn, Predictions, Workload, predict_in_process
from rag_pet.evaluation.storage_probe import storage_probe
from rag_pet.inference.answering import AnswerAlone, Answerer
from rag_pet.models import Generator
from rag_pet.storage import write_json_atomic, write_text_atomic

RECALL_AT = (1, 5)


def workload(settings: EvalConfig, examples: list[QAExample], k: int | None) -> Workload:
    """The eval workload: RAG over `k` passages (retrieved 5 deep for recall), or closed-book (`k` None)."""
    return Workload(
        questions=[e.question for e in examples],
        k=k,
        depth=max(k, *RECALL_AT) if k else None,
        adapter=settings.adapter,
        max_new_tokens=settings.max_new_tokens,
        batch_size=settings.batch_size,
    )


def score_predictions(
    examples: list[QAExample], predictions: Predictions, answer_nll: list[float] | None = None
) -> dict[str, float]:
    """EM/F1, recall@1/5 of the gold passage (when known and something was retrieved), the mean answer NLL (when
    scored), latency, throughput, errors."""
    metrics = qa_scores(predictions.answers, [e.answers for e in examples])
    if answer_nll is not None:
        metrics["answer_nll"] = float(np.mean(answer_nll))
    gold = [e.gold_passage_id for e in examples]
    if all(gold) and any(predictions.retrieved):
        for at in RECALL_AT:
            hits = [g in row[:at] for g, row in zip(gold, predictions.retrieved, strict=True)]
            metrics[f"retrieval_recall@{at}"] = float(np.mean(hits))
    metrics.update(latency_summary(predictions.latencies_s, len(examples), predictions.wall_seconds))
    metrics.update(
        eval_seconds=predictions.wall_seconds,
        seconds_per_question=predictions.wall_seconds / len(examples),
        errors=predictions.errors,
    )
    return metrics


def write_predictions(
    out_dir: Path,
    examples: list[QAExample],
    predictions: Predictions,
    metrics: dict,
    answer_nll: list[float] | None = None,
    storage: list[float | None] | None = None,
) -> None:
    """`predictions.jsonl` (one record per question: article, answer, retrieved ids, EM, F1, answer NLL and, when
    probed, the storage probe) and `metrics.json`, atomically."""
    nlls = answer_nll if answer_nll is not None else [None] * len(examples)
    rows = [
        {
            "id": example.id,
            "article": example.article,
            "gold_passage_id": example.gold_passage_id,
            "question": example.question,
            "prediction": answer,
            "answers": list(example.answers),
            "retrieved": retrieved,
            "exact_match": best_over_answers(exact_match, answer, example.answers),
            "f1": best_over_answers(f1, answer, example.answers),
            "answer_nll": nll,
        }
        for example, answer, retrieved, nll in zip(
            examples, predictions.answers, predictions.retrieved, nlls, strict=True
        )
    ]
    if storage is not None:
        rows = [row | {"storage_probe": stored} for row, stored in zip(rows, storage, strict=True)]
    write_text_atomic(out_dir / "predictions.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_json_atomic(out_dir / "metrics.json", metrics)


def score_and_write(examples: list[QAExample], predictions: Predictions, out_dir: Path) -> dict[str, float]:
    """`score_predictions`, written to `out_dir`."""
    metrics = score_predictions(examples, predictions)
    write_predictions(out_dir, examples, predictions, metrics)
    return metrics


def batch1_latency(
    retrieve: Callable | None,
    answerer: Answerer | AnswerFn,
    settings: EvalConfig,
    examples: list[QAExample],
    k: int | None,
) -> dict[str, float]:
    """`settings.latency_questions` questions answered one at a time after `settings.latency_warmup` untimed ones
    (the questions after them; both go round the examples again when there are fewer): p50/p95 ms of the whole
    answer (retrieval included), time to the first token, per decoded token and retrieval (`batch1_summary`); empty
    when `latency_questions` is 0.

    An `Answerer`'s answers are timed step by step on weights in `eval.precision` (`Answerer.answering_alone`);
    another answer function is timed whole, so only the whole answer and retrieval are reported for it."""
    if not settings.latency_questions:
        return {}
    timed = [examples[i % len(examples)] for i in range(settings.latency_questions)]
    work = replace(workload(settings, timed, k), batch_size=1)
    warmup = [examples[(len(work.questions) + i) % len(examples)].question for i in range(settings.latency_warmup)]
    answer = _answer_fn(answerer)
    with answerer.answering_alone() if isinstance(answerer, Answerer) else nullcontext() as answer_alone:
        for question in warmup:
            _answer_alone(retrieve, answer, answer_alone, work, question)
        timings = [_answer_alone(retrieve, answer, answer_alone, work, question) for question in work.questions]
    return batch1_summary(timings)


def _answer_alone(
    retrieve: Callable | None, answer: AnswerFn, answer_alone: AnswerAlone | None, work: Workload, question: str
) -> QuestionTiming:
    """One question, timed: its passages retrieved as the batch runner retrieves them, then its answer."""
    began = time.perf_counter()
    passages = retrieve([question], work.depth)[0][: work.k] if retrieve is not None and work.k else None
    retrieval_s = time.perf_counter() - began if passages is not None else None
    if answer_alone is None:
        answer([question], [passages] if passages is not None else None, work.max_new_tokens)
        return QuestionTiming(time.perf_counter() - began, retrieval_s)
    _, clock = answer_alone(question, passages, work.max_new_tokens)
    total_s = time.perf_counter() - began
    return QuestionTiming(total_s, retrieval_s, clock.first_token_s, clock.seconds_per_token, clock.tokens)


def _answer_fn(answerer: Answerer | AnswerFn) -> AnswerFn:
    return answerer.answer if isinstance(answerer, Answerer) else answerer


def answer_score_and_write(
    retrieve: Callable | None,
    answerer: Answerer | AnswerFn,
    settings: EvalConfig,
    examples: list[QAExample],
    k: int | None,
    out_dir: Path,
    scorer: AnswerScorer | None = None,
    storage: list[float | None] | None = None,
) -> dict[str, float]:
    """Answer the examples in batches, score them (with `scorer`, also the gold answer's NLL given the passages each
    question was answered from), time answers at batch 1 if asked; write all, with any `storage` probe scores,
    into `out_dir`."""
    predictions = predict_in_process(retrieve, _answer_fn(answerer), workload(settings, examples, k))
    nll = scorer(examples, predictions.passages) if scorer is not None else None
    metrics = score_predictions(examples, predictions, nll)
    probed = [score for score in storage or [] if score is not None]
    if probed:
        metrics["storage_probe"] = float(np.mean(probed))
    metrics.update(batch1_latency(retrieve, answerer, settings, examples, k))
    write_predictions(out_dir, examples, predictions, metrics, nll, storage)
    return metrics


def evaluate_qa(
    generator: Generator,
    data: DataConfig,
    settings: EvalConfig,
    examples: list[QAExample],
    device: torch.device,
    out_dir: Path,
) -> dict[str, float]:
    """Closed-book EM/F1 of greedy answers in this process (and `settings.storage_probe`: the storage probe on
    the gold passages of an article dataset); writes predictions and metrics into `out_dir`."""
    prompts = PromptEncoder.from_config(generator.tokenizer, data, generator.is_seq2seq)
    answerer = Answerer(generator, prompts, None, device, settings.precision)
    scorer = AnswerScorer(generator, prompts, None, device, settings.precision)
    if not settings.storage_probe:
        return answer_score_and_write(None, answerer, settings, examples, None, out_dir, scorer)
    articles = data_articles(data) if data.name in ARTICLE_SOURCES else ()
    passages = {passage.id: passage for passage in article_corpus(articles)}
    storage = storage_probe(generator, examples, passages, device, data.max_answer_tokens)
    return answer_score_and_write(None, answerer, settings, examples, None, out_dir, scorer, storage)
