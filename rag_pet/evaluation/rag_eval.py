"""Evaluate a RAG pipeline on QA examples: retrieve from the sharded index, decode, score answers and retrieval."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from rag_pet.config import RagPetConfig
from rag_pet.data.types import Passage, QAExample
from rag_pet.evaluation.qa_metrics import best_over_answers, exact_match, f1, qa_scores
from rag_pet.evaluation.rag_decoding import rag_generate
from rag_pet.models.rag import RagModel, document_log_prior
from rag_pet.models.rag_inputs import EMPTY_PASSAGE, RagInputs
from rag_pet.retrieval.live_index import encode_queries_for_search
from rag_pet.retrieval.sharded import ShardedIndex
from rag_pet.storage import write_json_atomic, write_text_atomic

RECALL_AT = (1, 5)


def evaluate_rag(
    model: RagModel,
    inputs: RagInputs,
    index: ShardedIndex,
    passages: dict[str, Passage],
    examples: list[QAExample],
    config: RagPetConfig,
    device: torch.device,
    out_dir: Path,
) -> dict[str, float]:
    """EM/F1 of `rag.decoding` answers over the top `rag.k` passages, and recall@1/5 of the gold passage (if known).

    Writes `predictions.jsonl` (answer and retrieved ids per question) and `metrics.json` into `out_dir`.
    """
    model.to(device).eval()
    k, batch_size = config.rag.k, config.eval.batch_size
    depth = min(max(k, *RECALL_AT), len(index))
    predictions, retrieved = [], []
    start = time.perf_counter()
    for first in range(0, len(examples), batch_size):
        batch = examples[first : first + batch_size]
        queries = {name: t.to(device) for name, t in inputs.queries(batch).items()}
        vectors = encode_queries_for_search(model.retriever, queries)
        result = index.search(vectors, depth)
        top = [[passages.get(doc, EMPTY_PASSAGE) for doc in row[:k]] for row in result.doc_ids]
        scores = torch.einsum("bd,bkd->bk", torch.as_tensor(vectors), torch.as_tensor(result.vectors[:, :k]))
        log_prior = document_log_prior(scores, torch.as_tensor(result.rows[:, :k] >= 0), config.rag.temperature)
        prompts = [inputs.prompts.prompt_ids(example, p) for example, row in zip(batch, top, strict=True) for p in row]
        predictions.extend(
            rag_generate(
                model.generator,
                inputs.prompts.tokenizer,
                prompts,
                log_prior,
                model.is_seq2seq,
                config.rag.decoding,
                config.eval.max_new_tokens,
                config.rag.num_beams,
            )
        )
        retrieved.extend(result.doc_ids)
    seconds = time.perf_counter() - start
    metrics = qa_scores(predictions, [e.answers for e in examples])
    metrics.update(eval_seconds=seconds, seconds_per_question=seconds / len(examples))
    gold = [e.gold_passage_id for e in examples]
    if all(gold):
        for at in RECALL_AT:
            metrics[f"retrieval_recall@{at}"] = float(
                np.mean([g in row[:at] for g, row in zip(gold, retrieved, strict=True)])
            )
    rows = [
        {
            "id": example.id,
            "question": example.question,
            "prediction": prediction,
            "answers": list(example.answers),
            "retrieved": row[:k],
            "exact_match": best_over_answers(exact_match, prediction, example.answers),
            "f1": best_over_answers(f1, prediction, example.answers),
        }
        for example, prediction, row in zip(examples, predictions, retrieved, strict=True)
    ]
    write_text_atomic(out_dir / "predictions.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_json_atomic(out_dir / "metrics.json", metrics)
    return metrics
