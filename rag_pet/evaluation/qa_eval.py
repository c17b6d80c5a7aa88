"""Score answers to QA examples (EM/F1, gold-passage recall, latency) and write predictions and metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from rag_pet.config import DataConfig, EvalConfig
from rag_pet.data.prompts import PromptEncoder
from rag_pet.data.types import QAExample
from rag_pet.evaluation.latency import latency_summary
from rag_pet.evaluation.qa_metrics import best_over_answers, exact_match, f1, qa_scores
from rag_pet.evaluation.runners import AnswerFn, Predictions, Workload, predict_in_process
from rag_pet.inference.answering import Answerer
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


def score_predictions(examples: list[QAExample], predictions: Predictions) -> dict[str, float]:
    """EM/F1, recall@1/5 of the gold passage (when known and something was retrieved), latency, throughput, errors."""
    metrics = qa_scores(predictions.answers, [e.answers for e in examples])
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


def write_predictions(out_dir: Path, examples: list[QAExample], predictions: Predictions, metrics: dict) -> None:
    """`predictions.jsonl` (answer, retrieved ids and scores per question) and `metrics.json`, atomically."""
    rows = [
        {
            "id": example.id,
            "question": example.question,
            "prediction": answer,
            "answers": list(example.answers),
            "retrieved": retrieved,
            "exact_match": best_over_answers(exact_match, answer, example.answers),
            "f1": best_over_answers(f1, answer, example.answers),
        }
        for example, answer, retrieved in zip(examples, predictions.answers, predictions.retrieved, strict=True)
    ]
    write_text_atomic(out_dir / "predictions.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_json_atomic(out_dir / "metrics.json", metrics)


def score_and_write(examples: list[QAExample], predictions: Predictions, out_dir: Path) -> dict[str, float]:
    """`score_predictions`, written to `out_dir`."""
    metrics = score_predictions(examples, predictions)
    write_predictions(out_dir, examples, predictions, metrics)
    return metrics


def batch1_latency(
    retrieve: Callable | None, answer: AnswerFn, settings: EvalConfig, examples: list[QAExample], k: int | None
) -> dict[str, float]:
    """p50/p95 milliseconds per question answered alone (retrieval included), over the first
    `settings.latency_questions` questions; empty when that is 0."""
    if not settings.latency_questions:
        return {}
    work = replace(workload(settings, examples[: settings.latency_questions], k), batch_size=1)
    timed = predict_in_process(retrieve, answer, work)
    summary = latency_summary(timed.latencies_s, len(work.questions), timed.wall_seconds)
    return {f"batch1_latency_p{p}_ms": summary[f"latency_p{p}_ms"] for p in (50, 95)}


def answer_score_and_write(
    retrieve: Callable | None,
    answer: AnswerFn,
    settings: EvalConfig,
    examples: list[QAExample],
    k: int | None,
    out_dir: Path,
) -> dict[str, float]:
    """Answer the examples in batches, score them, time answers at batch 1 if asked; write all into `out_dir`."""
    predictions = predict_in_process(retrieve, answer, workload(settings, examples, k))
    metrics = score_predictions(examples, predictions)
    metrics.update(batch1_latency(retrieve, answer, settings, examples, k))
    write_predictions(out_dir, examples, predictions, metrics)
    return metrics


def evaluate_qa(
    generator: Generator,
    data: DataConfig,
    settings: EvalConfig,
    examples: list[QAExample],
    device: torch.device,
    out_dir: Path,
) -> dict[str, float]:
    """Closed-book EM/F1 of greedy answers in this process; writes predictions and metrics into `out_dir`."""
    prompts = PromptEncoder.from_config(generator.tokenizer, data, generator.is_seq2seq)
    answerer = Answerer(generator, prompts, None, device, settings.precision)
    return answer_score_and_write(None, answerer.answer, settings, examples, None, out_dir)
