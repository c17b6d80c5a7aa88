"""What knowledge each method was given: the protocol's sentence for the report, and per closed-book method the
documents it read as text (its knowledge cell and, in the freshness stage, its text cell)."""

from __future__ import annotations

import statistics

from rag_pet.study.names import FRESH_TRAINING, KNOWLEDGE
from rag_pet.study.spec import KnowledgeConfig, StudyConfig, method_named, reads_documents

PROTOCOL_TEXT = {
    "knowledge_matched": (
        'Protocol `knowledge_matched` (after Ovadia et al. 2023, "Fine-Tuning or Retrieval?", and Soudani et al. '
        "2024): every method gets the same documents. The retrieval methods index them; each closed-book method "
        "that trains first reads every one of them as text ({epochs} pass(es), each cut to {tokens} tokens, by the "
        "recipe the *Documents read as text* section gives per method), then trains on the questions from those "
        "weights. The index holds the canonical articles, each fact once; a recipe's phrasings restate the same "
        "facts. *Unseen* articles are ones no training question came from; every method had their text."
    ),
    "questions_only": (
        "Protocol `questions_only`: closed-book methods train on the questions alone, so on *unseen* articles the "
        "retrieval methods read documents the closed-book methods never had (retrieval vs. no knowledge, not two "
        "ways to take the same knowledge in)."
    ),
}


QUESTIONS_MIXED = {
    "none": "none (text, then questions)",
    "train": "the training questions (mixed)",
    "facts": "a question per fact of every indexed article (mixed)",
}


def recipe_cells(knowledge: KnowledgeConfig) -> list[str]:
    """A recipe as the table shows it: passes, phrasings, permuted, full names, questions mixed in."""
    yes_no = {True: "yes", False: "no"}
    return [
        str(knowledge.epochs),
        str(knowledge.phrasings),
        yes_no[knowledge.permute],
        yes_no[knowledge.full_names],
        QUESTIONS_MIXED[knowledge.questions],
    ]


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
    tokens read, FLOPs, wall time of the steps and learning rate."""
    result = []
    for method in methods:
        found = {}
        for kind, name in ((KNOWLEDGE, "knowledge"), (FRESH_TRAINING["text"], "fresh")):
            done = [r for r in rows if r["method"] == method and r["kind"] == kind and r["status"] == "done"]
            if done:
                found.update({f"{name}_{key}": _mean(done, f"train_{key}") for key, _ in STAGE_FIGURES})
                found[f"{name}_lr"] = _mean(done, "learning_rate")
        if found:
            result.append({"method": method, **found})
    return result


def _figure(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def knowledge_markdown(study: StudyConfig, rows: list[dict]) -> list[str]:
    """The report's section on the documents the closed-book methods read as text: each method's recipe and what
    reading cost (none under `questions_only` without text freshness)."""
    table = knowledge_rows(rows, study.methods)
    if not table:
        return []
    parts = [
        "",
        "## Documents read as text",
        "",
        "How each closed-book method read the indexed documents (its recipe: `study.knowledge`, or the "
        "`study.recipes` entry after `@` in its name), at what learning rate, and the tokens it trained on as text: "
        "the indexed documents before its questions (the index's vectors are in the shared-index table) and the "
        "late articles' paragraphs in the freshness stage, read the same way. *Phrasings*: texts per paragraph, "
        "each stating its facts in other words (Allen-Zhu & Li 2023); *questions mixed in*: question-answer pairs "
        "in the same passes as the text. *wall s* runs from the first optimizer step to the last; the cost table's "
        "*train wall s* counts the questions only, its *total FLOPs to be ready* both.",
        "",
        "| method | passes | phrasings | permuted | full names | questions mixed in | text lr | documents: steps "
        "| tokens | FLOPs | wall s | late articles: steps | tokens | FLOPs | wall s |",
        "|" + " --- |" * 16,
    ]
    for row in table:
        method = row["method"]
        recipe = recipe_cells(study.knowledge_of(method)) if reads_documents_name(study, method) else ["-"] * 5
        rate = _figure(row.get("knowledge_lr"), "{:g}")
        cells = [
            _figure(row.get(f"{stage}_{key}"), fmt) for stage in ("knowledge", "fresh") for key, fmt in STAGE_FIGURES
        ]
        parts.append(f"| {method} | " + " | ".join([*recipe, rate, *cells]) + " |")
    return parts


def reads_documents_name(study: StudyConfig, method: str) -> bool:
    """Whether the study method called `method` reads the documents by a recipe."""
    return reads_documents(study, method_named(method))
