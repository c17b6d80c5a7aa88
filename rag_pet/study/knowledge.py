"""What knowledge each method was given: the protocol's sentence for the report, and per closed-book method the
documents it read as text (its knowledge cell and, in the freshness stage, its text cell)."""

from __future__ import annotations

import statistics

from rag_pet.study.cells import FRESH_TRAINING, KNOWLEDGE
from rag_pet.study.spec import StudyConfig

PROTOCOL_TEXT = {
    "knowledge_matched": (
        'Protocol `knowledge_matched` (after Ovadia et al. 2023, "Fine-Tuning or Retrieval?", and Soudani et al. '
        "2024): every method gets the same documents. The retrieval methods index them; each closed-book method "
        "that trains first reads every one of them as text ({epochs} pass(es), each cut to {tokens} tokens), then "
        "trains on the questions from those weights. *Unseen* articles are ones no training question came from; "
        "every method had their text."
    ),
    "questions_only": (
        "Protocol `questions_only`: closed-book methods train on the questions alone, so on *unseen* articles the "
        "retrieval methods read documents the closed-book methods never had (retrieval vs. no knowledge, not two "
        "ways to take the same knowledge in)."
    ),
}


def protocol_text(study: StudyConfig) -> str:
    """The sentence that says which protocol the study ran and what it means."""
    knowledge = study.knowledge
    return PROTOCOL_TEXT[study.protocol].format(epochs=knowledge.epochs, tokens=knowledge.max_text_tokens)


# (key after `train_`, format) of each stage's columns: steps, tokens, FLOPs, wall seconds of its steps
STAGE_FIGURES = (("steps", "{:.0f}"), ("tokens", "{:,.0f}"), ("flops", "{:.2e}"), ("steps_wall_seconds", "{:.0f}"))


def _mean(rows: list[dict], key: str) -> float | None:
    values = [row[key] for row in rows if row.get(key) is not None]
    return statistics.fmean(values) if values else None


def knowledge_rows(rows: list[dict], methods: list[str]) -> list[dict]:
    """Per method with text training: the mean over seeds of its knowledge cells' and text freshness cells' steps,
    tokens read, FLOPs and wall time of the steps."""
    result = []
    for method in methods:
        found = {}
        for kind, name in ((KNOWLEDGE, "knowledge"), (FRESH_TRAINING["text"], "fresh")):
            done = [r for r in rows if r["method"] == method and r["kind"] == kind and r["status"] == "done"]
            if done:
                found.update({f"{name}_{key}": _mean(done, f"train_{key}") for key, _ in STAGE_FIGURES})
        if found:
            result.append({"method": method, **found})
    return result


def _figure(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def knowledge_markdown(study: StudyConfig, rows: list[dict]) -> list[str]:
    """The report's section on the documents the closed-book methods read as text (none under `questions_only`
    without text freshness)."""
    table = knowledge_rows(rows, study.methods)
    if not table:
        return []
    parts = [
        "",
        "## Documents read as text",
        "",
        "Tokens each closed-book method trained on as text: the indexed documents before its questions (the index's "
        "vectors are in the shared-index table) and the late articles' paragraphs in the freshness stage. *wall s* "
        "runs from the first optimizer step to the last; the cost table's *train wall s* counts the questions only, "
        "its *total FLOPs to be ready* both.",
        "",
        "| method | documents: steps | tokens | FLOPs | wall s | late articles: steps | tokens | FLOPs | wall s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in table:
        cells = [
            _figure(row.get(f"{stage}_{key}"), fmt) for stage in ("knowledge", "fresh") for key, fmt in STAGE_FIGURES
        ]
        parts.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    return parts
