"""A study's answer, read from the cells' per-question records: every method's interval per split and metric,
paired comparisons with the reference and between every two methods (Benjamini-Hochberg corrected per metric and
split), the power of each split, seed against question variance, and the freshness gains tested the same way.

A method with several seeds is scored per question by its mean over the seeds; seed variance is reported apart."""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass

import numpy as np

from rag_pet.evaluation.statistics import (
    Estimate,
    adjust_p_values,
    clustered_standard_error,
    difference_sd,
    estimate,
    mean_interval,
    minimum_detectable_effect,
    paired_p_value,
    questions_needed,
)
from rag_pet.study.cells import EVAL_SPLIT, FRESH_INDEX, FRESH_TRAINING, MAIN, NEW_SPLIT, SEEN_SPLIT, TRAIN_SAMPLE_SPLIT
from rag_pet.study.spec import StudyConfig

# metric -> whether its per-question score is 0/1 (exact McNemar, Wilson) or graded (permutation, bootstrap)
METRICS = {
    "exact_match": True,
    "f1": False,
    "answer_nll": False,
    "retrieval_recall@1": True,
    "retrieval_recall@5": True,
}
LOWER_IS_BETTER = frozenset({"answer_nll"})
TESTED_METRICS = ("exact_match", "f1", "answer_nll")
SPLIT_TITLES = {
    EVAL_SPLIT: "unseen articles",
    SEEN_SPLIT: "seen articles (held-out questions)",
    TRAIN_SAMPLE_SPLIT: "training questions",
    NEW_SPLIT: "late articles, before they arrive",
}


@dataclass(frozen=True)
class Scores:
    """One method's per-question scores on one split (mean over its seeds), and each seed's mean per metric."""

    ids: list[str]
    articles: list[str | None]
    values: dict[str, np.ndarray]
    seed_means: dict[str, list[float]]

    def aligned(self, ids: list[str], metric: str) -> np.ndarray:
        position = {question: i for i, question in enumerate(self.ids)}
        return self.values[metric][[position[question] for question in ids]]


@dataclass(frozen=True)
class MethodEstimate:
    """A method's mean on a split with its interval; with several seeds, the standard deviation of the seeds'
    means (seed variance) beside the clustered standard error over questions (question variance)."""

    estimate: Estimate
    seeds: int
    seed_sd: float | None
    question_se: float


@dataclass(frozen=True)
class Comparison:
    """`method` minus `other` on the same questions: the mean difference, its clustered bootstrap interval, the
    paired test's p-value and the corrected one; `better` says which is better when the difference is
    significant."""

    split: str
    metric: str
    method: str
    other: str
    difference: float
    low: float
    high: float
    p_value: float
    p_adjusted: float
    n: int
    significant: bool

    @property
    def better(self) -> str | None:
        if not self.significant:
            return None
        ahead = self.difference < 0 if self.metric in LOWER_IS_BETTER else self.difference > 0
        return self.method if ahead else self.other


@dataclass(frozen=True)
class Power:
    """What a split can detect: questions and articles, the paired differences' (clustered) standard deviation,
    the minimum detectable effect, and the questions needed to detect the study's chosen effect."""

    split: str
    metric: str
    questions: int
    articles: int
    difference_sd: float
    minimum_effect: float
    effect: float | None
    questions_needed: int | None


@dataclass
class Analysis:
    reference: str
    splits: list[str]
    estimates: dict[tuple[str, str, str], MethodEstimate]
    comparisons: list[Comparison]
    power: list[Power]
    freshness: list[Comparison]

    def estimate_of(self, method: str, split: str, metric: str) -> MethodEstimate | None:
        return self.estimates.get((method, split, metric))

    def versus_reference(self, method: str, split: str, metric: str) -> Comparison | None:
        return next(
            (
                c
                for c in self.comparisons
                if c.split == split and c.metric == metric and {c.method, c.other} == {method, self.reference}
            ),
            None,
        )


def method_scores(records: list[dict], method: str, split: str, kind: str = MAIN) -> Scores | None:
    """The finished `kind` cells of `method` on `split`, over the questions every seed answered."""
    cells = [
        r
        for r in records
        if r["method"] == method and r["kind"] == kind and r["status"] == "done" and r.get("questions", {}).get(split)
    ]
    if not cells:
        return None
    by_seed = [{q["id"]: q for q in cell["questions"][split]} for cell in cells]
    ids = sorted(set.intersection(*(set(seed) for seed in by_seed)))
    if not ids:
        return None
    values, seed_means = {}, {}
    for metric in METRICS:
        if all(seed[i].get(metric) is not None for seed in by_seed for i in ids):
            per_seed = np.array([[seed[i][metric] for i in ids] for seed in by_seed], dtype=float)
            values[metric] = per_seed.mean(axis=0)
            seed_means[metric] = per_seed.mean(axis=1).tolist()
    return Scores(ids, [by_seed[0][i].get("article") for i in ids], values, seed_means)


def _binary(metric: str, *arrays: np.ndarray) -> bool:
    """A 0/1 metric whose scores are still 0/1 (a mean over several seeds is graded)."""
    return METRICS[metric] and all(np.isin(a, (0.0, 1.0)).all() for a in arrays)


def method_estimate(scores: Scores, metric: str, stats_seed: int, confidence: float) -> MethodEstimate:
    """A method's mean of `metric` with its article-clustered interval, and the spread over its seeds."""
    values = scores.values[metric]
    found = estimate(values, scores.articles, _binary(metric, values), confidence, stats_seed)
    seeds = scores.seed_means[metric]
    seed_sd = statistics.stdev(seeds) if len(seeds) > 1 else None
    return MethodEstimate(found, len(seeds), seed_sd, clustered_standard_error(values, scores.articles))


def _compare(study: StudyConfig, split: str, metric: str, a: tuple[str, Scores], b: tuple[str, Scores]) -> dict:
    """The raw comparison (p not yet corrected) of two methods on their common questions."""
    (name_a, scores_a), (name_b, scores_b) = a, b
    ids = sorted(set(scores_a.ids) & set(scores_b.ids))
    first, second = scores_a.aligned(ids, metric), scores_b.aligned(ids, metric)
    articles = [scores_a.articles[scores_a.ids.index(i)] for i in ids]
    interval = mean_interval(first - second, articles, study.stats.confidence, study.stats.resamples)
    p_value = paired_p_value(first, second, _binary(metric, first, second), study.stats.resamples)
    return {
        "split": split,
        "metric": metric,
        "method": name_a,
        "other": name_b,
        "difference": interval.mean + 0.0,  # + 0.0 turns -0.0 into 0.0
        "low": interval.low + 0.0,
        "high": interval.high + 0.0,
        "p_value": p_value,
        "n": len(ids),
        "articles": articles,
        "pair": (first, second),
    }


def _corrected(raw: list[dict], alpha: float) -> list[Comparison]:
    """BH-adjust one family of raw comparisons."""
    adjusted = adjust_p_values([r["p_value"] for r in raw])
    fields = ("split", "metric", "method", "other", "difference", "low", "high", "p_value", "n")
    return [
        Comparison(**{key: r[key] for key in fields}, p_adjusted=p, significant=p < alpha)
        for r, p in zip(raw, adjusted, strict=True)
    ]


def _power(study: StudyConfig, split: str, metric: str, raw: list[dict]) -> Power | None:
    """Power of the split for one metric, from the largest clustered SD of its pairs' differences (so the
    detectable effect holds for every pair)."""
    if not raw:
        return None
    sd = max(difference_sd(*r["pair"], r["articles"]) for r in raw)
    n = max(r["n"] for r in raw)
    articles = max(len({a for a in r["articles"]}) for r in raw)
    effect = study.stats.effects.get(metric)
    needed = questions_needed(sd, effect, study.stats.alpha, study.stats.power) if effect else None
    mde = minimum_detectable_effect(sd, n, study.stats.alpha, study.stats.power)
    return Power(split, metric, n, articles, sd, mde, effect, needed)


def analyse(study: StudyConfig, records: list[dict]) -> Analysis:
    """Every interval, paired comparison and power figure of the study's main cells, and the freshness gains."""
    reference = study.stats.reference_of(study.methods)
    splits = [split for split in SPLIT_TITLES if any(split in r.get("questions", {}) for r in records)]
    estimates, comparisons, power = {}, [], []
    for split in splits:
        scores = {m: s for m in study.methods if (s := method_scores(records, m, split)) is not None}
        for method, found in scores.items():
            for metric in found.values:
                estimates[(method, split, metric)] = method_estimate(found, metric, 0, study.stats.confidence)
        ordered = [m for m in [reference, *study.methods] if m in scores]
        ordered = list(dict.fromkeys(ordered))
        for metric in TESTED_METRICS:
            raw = [
                _compare(study, split, metric, (a, scores[a]), (b, scores[b]))
                for a, b in itertools.combinations(ordered, 2)
                if metric in scores[a].values and metric in scores[b].values
            ]
            comparisons += _corrected(raw, study.stats.alpha)
            if (found := _power(study, split, metric, raw)) is not None:
                power.append(found)
    for method in study.methods:  # the late articles' questions after each way of taking them in
        for kind in (FRESH_INDEX, *FRESH_TRAINING.values()):
            if (after := method_scores(records, method, NEW_SPLIT, kind)) is not None:
                for metric in after.values:
                    key = (fresh_name(method, kind), NEW_SPLIT, metric)
                    estimates[key] = method_estimate(after, metric, 0, study.stats.confidence)
    return Analysis(reference, splits, estimates, comparisons, power, freshness_comparisons(study, records))


def fresh_name(method: str, kind: str) -> str:
    """How a freshness cell's scores are named in the analysis: `lora:fresh_text`."""
    return f"{method}:{kind}"


def freshness_comparisons(study: StudyConfig, records: list[dict]) -> list[Comparison]:
    """Per method and way of taking the late articles in: after minus before on the same late-article questions,
    one BH family per metric."""
    found = []
    for metric in TESTED_METRICS:
        raw = []
        for method in study.methods:
            before = method_scores(records, method, NEW_SPLIT)
            for kind in (FRESH_INDEX, *FRESH_TRAINING.values()):
                after = method_scores(records, method, NEW_SPLIT, kind)
                if before is None or after is None or metric not in before.values or metric not in after.values:
                    continue
                raw.append(_compare(study, NEW_SPLIT, metric, (fresh_name(method, kind), after), (method, before)))
        found += _corrected(raw, study.stats.alpha)
    return found
