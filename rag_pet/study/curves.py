"""Data needs (`study.budgets`): each method's EM, F1 and answer NLL on the unseen split against the number of
training questions, with the clustered intervals of the main analysis, where two methods' curves cross, and the
report's section on them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from rag_pet.objectives import study_methods
from rag_pet.study.analysis import LOWER_IS_BETTER, TESTED_METRICS, Scores, method_estimate, method_scores
from rag_pet.study.curve_cells import CURVE
from rag_pet.study.names import EVAL_SPLIT
from rag_pet.study.report_stats import METRIC_TITLES, interval_text
from rag_pet.study.spec import StudyConfig

CROSSING_METRICS = ("f1", "answer_nll")


@dataclass(frozen=True)
class Crossing:
    """Where `metric` puts `before` ahead of `after` at `low` training questions and behind it at `high`; `at` is
    the size where their difference reaches zero by linear interpolation between the two."""

    metric: str
    before: str
    after: str
    low: int
    high: int
    at: float


def curve_sizes(study: StudyConfig) -> list[int]:
    """The training-set sizes of the curves, ascending: `study.budgets` and the main cells' `train_examples`."""
    return sorted({*study.budgets, study.train_examples})


def data_needs(study: StudyConfig, records: list[dict]) -> list[dict]:
    """Per method (in study order) and size: `method`, `size`, `trains` and each metric's mean with its interval
    (`<metric>_low`, `<metric>_high`) on the unseen split, over the questions every seed answered; a method that
    does not train has its main cell's score at every size. Empty without `study.budgets`."""
    if not study.budgets:
        return []
    rows = []
    for method in study.methods:
        trains = study_methods()[method].trains
        main = _estimates(study, method_scores(records, method, EVAL_SPLIT))
        for size in curve_sizes(study):
            if trains and size != study.train_examples:
                curve = [r for r in records if r["kind"] == CURVE and _trained_on(r) == size]
                found = _estimates(study, method_scores(curve, method, EVAL_SPLIT, CURVE))
            else:
                found = main
            rows.append({"method": method, "size": size, "trains": trains, **found})
    return rows


def _trained_on(record: dict) -> int | None:
    """The training questions of a curve cell: its `data.max_train_examples`."""
    return ((record.get("config") or {}).get("data") or {}).get("max_train_examples")


def _estimates(study: StudyConfig, scores: Scores | None) -> dict[str, float]:
    """Each tested metric's mean and interval (`<metric>_low`, `<metric>_high`), as the main analysis has them."""
    found = {}
    for metric in TESTED_METRICS if scores is not None else ():
        if metric in scores.values:
            e = method_estimate(scores, metric, study.stats.confidence).estimate
            found.update({metric: e.mean, f"{metric}_low": e.low, f"{metric}_high": e.high, f"{metric}_rule": e.rule})
    return found


def sign_flips(sizes: list[float], first: list[float], second: list[float]) -> list[tuple[int, int, float]]:
    """Where `first - second` changes sign along `sizes` (ascending): (index before, index after, the size where
    the difference is zero by linear interpolation). Sizes where the two tie are passed over: a flip across a tie
    crosses at the first tied size."""
    difference = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    signed = [i for i in range(len(difference)) if difference[i] != 0]
    flips = []
    for i, j in itertools.pairwise(signed):
        if np.sign(difference[i]) == np.sign(difference[j]):
            continue
        if j == i + 1:
            at = sizes[i] + (sizes[j] - sizes[i]) * difference[i] / (difference[i] - difference[j])
        else:
            at = sizes[i + 1]
        flips.append((i, j, float(at)))
    return flips


def crossings(rows: list[dict], methods: list[str], metric: str) -> list[Crossing]:
    """Every flip of two methods' order by mean `metric`, over the sizes where both have a score."""
    found = []
    for a, b in itertools.combinations(methods, 2):
        points = {
            size: (values[a], values[b])
            for size in sorted({row["size"] for row in rows})
            if len(values := _values_at(rows, size, metric, (a, b))) == 2
        }
        sizes = list(points)
        first, second = [p[0] for p in points.values()], [p[1] for p in points.values()]
        for i, j, at in sign_flips(sizes, first, second):
            ahead = first[i] > second[i]
            if metric in LOWER_IS_BETTER:
                ahead = not ahead
            before, after = (a, b) if ahead else (b, a)
            found.append(Crossing(metric, before, after, sizes[i], sizes[j], at))
    return found


def _values_at(rows: list[dict], size: int, metric: str, methods: tuple[str, str]) -> dict[str, float]:
    return {
        row["method"]: row[metric]
        for row in rows
        if row["size"] == size and row["method"] in methods and row.get(metric) is not None
    }


def _table(rows: list[dict], methods: list[str], sizes: list[int], main: int, metric: str) -> list[str]:
    header = [f"{size} (main)" if size == main else str(size) for size in sizes]
    lines = ["| method | " + " | ".join(header) + " |", "|" + " --- |" * (len(sizes) + 1)]
    for method in methods:
        cells = []
        for size in sizes:
            row = next((r for r in rows if r["method"] == method and r["size"] == size), {})
            found = row.get(metric)
            if found is None:
                cells.append("-")
                continue
            cells.append(interval_text(found, row[f"{metric}_low"], row[f"{metric}_high"], row[f"{metric}_rule"]))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _crossing_lines(rows: list[dict], methods: list[str]) -> list[str]:
    lines = []
    for metric in CROSSING_METRICS:
        title = METRIC_TITLES[metric]
        found = crossings(rows, methods, metric)
        if not found:
            lines.append(f"- {title}: no two methods' curves cross over these sizes.")
        for c in found:
            lines.append(
                f"- {title}: `{c.after}` overtakes `{c.before}` between {c.low} and {c.high} training questions "
                f"(about {c.at:.0f} by linear interpolation)."
            )
    return lines


def data_needs_markdown(study: StudyConfig, rows: list[dict]) -> list[str]:
    """The report's *Data needs* section: a table per metric (methods by training-set size, mean [interval]) and
    where the curves cross; nothing without `study.budgets`."""
    if not rows:
        return []
    sizes = curve_sizes(study)
    flat = [m for m in study.methods if not study_methods()[m].trains]
    parts = [
        "",
        "## Data needs",
        "",
        f"Each trained method trained again on the first n training questions for every n in `study.budgets`, its "
        f"budget scaled by n / {study.train_examples} (the same passes over its questions as the main cells make, "
        "at least one optimizer step; from the same weights"
        + (", after the same pass over the documents" if study.protocol == "knowledge_matched" else "")
        + f"), and scored on the unseen split (`{EVAL_SPLIT}`) alone; the {study.train_examples} column is the main "
        "cells. Mean over the split's questions with its interval clustered by article (as in *Accuracy*)"
        + (f"; methods that do not train ({', '.join(flat)}) score the same at every size" if flat else "")
        + ". `data_needs.png` plots F1 and answer NLL against the training questions.",
    ]
    for metric in TESTED_METRICS:
        parts += [
            "",
            f"### {METRIC_TITLES[metric]}",
            "",
            *_table(rows, study.methods, sizes, study.train_examples, metric),
        ]
    parts += [
        "",
        "### Where the curves cross",
        "",
        "Sizes between which two methods' order by mean F1 or answer NLL flips, the crossing interpolated linearly "
        "between them. Whether the two differ significantly at any size is not tested: read the intervals above.",
        "",
        *_crossing_lines(rows, study.methods),
    ]
    return parts
