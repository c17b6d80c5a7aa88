"""A cell's per-question records, per split, copied from its run's `predictions.jsonl` files into the cell record,
so a study's intervals and paired tests are computed from cell records alone."""

from __future__ import annotations

import json
from pathlib import Path

from rag_pet.evaluation.qa_eval import RECALL_AT
from rag_pet.evaluation.steps import eval_folder

KEPT = ("id", "article", "prediction", "exact_match", "f1", "answer_nll", "storage_probe")


def cell_questions(run_dir: Path, label: str, eval_split: str, extra_splits: list[str]) -> dict[str, list[dict]]:
    """Per split the run in `run_dir` evaluated (`eval_split`, then `extra_splits`), one record per question: id,
    article, prediction, EM, F1, answer NLL and, where a gold passage is known, whether it was retrieved in the
    top 1 / 5; the storage probe where it ran (None otherwise). `label` is the row's method label, which names the
    run's evaluation folders."""
    found = {}
    folders = {eval_split: label, **{split: f"{label}@{split}" for split in extra_splits}}
    for split, folder in folders.items():
        path = Path(run_dir) / "eval" / eval_folder(folder) / "predictions.jsonl"
        if path.is_file():
            found[split] = [_question(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    return found


def _question(row: dict) -> dict:
    question = {key: row.get(key) for key in KEPT}
    gold = row.get("gold_passage_id")
    if gold and row.get("retrieved"):
        for at in RECALL_AT:
            question[f"retrieval_recall@{at}"] = float(gold in row["retrieved"][:at])
    return question
