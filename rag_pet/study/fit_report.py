"""The report's check of the closed-book arm: does each closed-book method fit its own training questions, and did
it store the facts as text (the storage probe) even where it cannot answer questions about them?

A method that does not fit its training set has not been given a working recipe, so its unseen-article score says
little about closed-book learning; a method that stores facts but does not answer has them but cannot extract them
(Allen-Zhu & Li 2023, "Physics of Language Models 3.1", arXiv 2309.14316).
"""

from __future__ import annotations

import numpy as np

from rag_pet.evaluation.statistics import Estimate, estimate
from rag_pet.study.analysis import seed_questions
from rag_pet.study.names import EVAL_SPLIT, MAIN, TRAIN_SAMPLE_SPLIT
from rag_pet.study.report_stats import interval_text
from rag_pet.study.spec import StudyConfig, method_named

STORAGE = "storage_probe"


def probed(records: list[dict], method: str, split: str, metric: str, confidence: float) -> Estimate | None:
    """`method`'s mean of `metric` on `split` over the questions every seed scored (the storage probe leaves out
    questions whose passage names nothing of its article before the answer), with its article-level interval."""
    by_seed = seed_questions(records, method, split)
    if not by_seed:
        return None
    common = set.intersection(*(set(seed) for seed in by_seed))
    ids = sorted(i for i in common if all(seed[i].get(metric) is not None for seed in by_seed))
    if not ids:
        return None
    values = np.array([[seed[i][metric] for i in ids] for seed in by_seed], dtype=float)
    return estimate(values, [by_seed[0][i].get("article") for i in ids], bounded=True, confidence=confidence)


def fit_rows(study: StudyConfig, records: list[dict]) -> list[dict]:
    """Per closed-book method: EM on its own training questions (fit), EM on unseen articles, and the storage probe
    on both, each an `Estimate` (None where not measured), and whether it fits (training EM at least
    `study.stats.fit_exact_match`)."""
    rows = []
    confidence = study.stats.confidence
    for method in study.methods:
        if method_named(method).retrieves:
            continue
        row = {"method": method}
        for split in (TRAIN_SAMPLE_SPLIT, EVAL_SPLIT):
            row[f"em_{split}"] = probed(records, method, split, "exact_match", confidence)
            row[f"stored_{split}"] = probed(records, method, split, STORAGE, confidence)
        fit = row[f"em_{TRAIN_SAMPLE_SPLIT}"]
        row["fits"] = None if fit is None else fit.mean >= study.stats.fit_exact_match
        rows.append(row)
    return rows


def _phrasing_text(records: list[dict]) -> str:
    """Whether evaluation asked its questions in phrasings no training question used."""
    mains = [r for r in records if r["kind"] == MAIN and r["status"] == "done"]
    heldout = {bool(((r.get("config") or {}).get("data") or {}).get("heldout_phrasings")) for r in mains}
    if heldout == {True}:
        return (
            "Every split but the training questions asks its questions in held-out phrasings that no training "
            "question uses (`data.heldout_phrasings`), for every method."
        )
    if heldout == {False}:
        return "Evaluation asks its questions in the same phrasings as training (`data.heldout_phrasings=false`)."
    return "Some cells asked held-out phrasings and some did not (`data.heldout_phrasings`): compare with care."


def _shown(found: Estimate | None) -> str:
    return "-" if found is None else interval_text(found.mean, found.low, found.high, found.rule)


def _verdict(row: dict, trains: bool) -> str:
    if not trains:
        return "does not train"
    if row["fits"] is None:
        return "-"
    return "fits" if row["fits"] else "**does not fit its training set**"


def fit_markdown(study: StudyConfig, records: list[dict]) -> list[str]:
    """The report's section on the closed-book methods' fit and storage (none without closed-book methods)."""
    rows = fit_rows(study, records)
    if not rows:
        return []
    threshold = study.stats.fit_exact_match
    parts = [
        "",
        "## Closed-book fit and storage",
        "",
        "*Fit*: EM on the method's own training questions, in the phrasing it trained on; a method below "
        f"`study.stats.fit_exact_match` ({threshold:g}) is flagged, since it did not learn what it was taught. "
        "*Stored*: the storage probe (`rag_pet/evaluation/storage_probe.py`): greedy continuation of the gold "
        "passage up to the answer, scored 1 when it continues with the answer; questions whose passage names "
        "nothing of its article before the answer are left out. Stored but not answered means the fact is in the "
        "weights but not extractable by a question (Allen-Zhu & Li 2023). Intervals are article-level, as above. "
        + _phrasing_text(records),
        "",
        "| method | fit | EM, training questions | stored, training articles | EM, unseen articles | stored, unseen"
        " articles |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        trains = method_named(row["method"]).trains
        cells = [
            _shown(row[key])
            for key in (
                f"em_{TRAIN_SAMPLE_SPLIT}",
                f"stored_{TRAIN_SAMPLE_SPLIT}",
                f"em_{EVAL_SPLIT}",
                f"stored_{EVAL_SPLIT}",
            )
        ]
        parts.append(f"| {row['method']} | {_verdict(row, trains)} | " + " | ".join(cells) + " |")
    return parts
