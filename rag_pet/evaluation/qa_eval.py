"""Generate answers for QA examples, score them, and write predictions and metrics to a run directory."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from rag_pet.config import DataConfig, EvalConfig
from rag_pet.data.prompts import PromptEncoder
from rag_pet.data.types import QAExample
from rag_pet.evaluation.generation import generate_answers
from rag_pet.evaluation.qa_metrics import best_over_answers, exact_match, f1, qa_scores
from rag_pet.models import Generator
from rag_pet.storage import write_json_atomic, write_text_atomic


def evaluate_qa(
    generator: Generator,
    examples: list[QAExample],
    data: DataConfig,
    settings: EvalConfig,
    device: torch.device,
    out_dir: Path,
) -> dict[str, float]:
    """EM/F1 of greedy answers; writes `predictions.jsonl` and `metrics.json` into `out_dir`."""
    encoder = PromptEncoder.from_config(generator.tokenizer, data, generator.is_seq2seq)
    prompts = [encoder.prompt_ids(example) for example in examples]
    generator.model.to(device)
    start = time.perf_counter()
    predictions = generate_answers(
        generator.model,
        generator.tokenizer,
        prompts,
        generator.is_seq2seq,
        settings.batch_size,
        settings.max_new_tokens,
        device,
    )
    seconds = time.perf_counter() - start
    metrics = qa_scores(predictions, [example.answers for example in examples])
    metrics.update(eval_seconds=seconds, seconds_per_question=seconds / len(examples))
    rows = [
        {
            "id": example.id,
            "question": example.question,
            "prediction": prediction,
            "answers": list(example.answers),
            "exact_match": best_over_answers(exact_match, prediction, example.answers),
            "f1": best_over_answers(f1, prediction, example.answers),
        }
        for example, prediction in zip(examples, predictions, strict=True)
    ]
    write_text_atomic(
        out_dir / "predictions.jsonl", "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    )
    write_json_atomic(out_dir / "metrics.json", metrics)
    return metrics
