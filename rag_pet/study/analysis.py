"""A study's answer, read from the cells' per-question records: every method's interval per split and metric,
paired comparisons with the reference and between every two methods (Benjamini-Hochberg corrected per metric and
split), the power of each split in articles, seed against article variance, and the freshness gains tested the
same way. Every interval and test works at the article (and seed) level: `rag_pet.evaluation.statistics`."""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass

import numpy as np

from rag_pet.evaluation.statistics import (
    Estimate,
    adjust_p_values,
    articles_needed,
    clustered_standard_error,
    estimate,
    minimum_detectable_effect,
    paired_difference,
)
from rag_pet.study.names import EVAL_SPLIT, FRESH_INDEX, FRESH_TRAINING, MAIN, NEW_SPLIT, SEEN_SPLIT, TRAIN_SAMPLE_SPLIT
from rag_pet.study.spec import StudyConfig

METRICS = ("exact_match", "f1", "answer_nll", "retrieval_recall@1", "retrieval_recall@5")
LOWER_IS_BETTER = frozenset({"answer_nll"})
UNBOUNDED = frozenset({"answer_nll"})  # every other metric lies in [0, 1]
TESTED_METRICS = ("exact_match", "f1", "answer_nll")
SPLIT_TITLES = {
    EVAL_SPLIT: "unseen articles",
    SEEN_SPLIT: "seen articles (held-out questions)",
    TRAIN_SAMPLE_SPLIT: "training questions",
    NEW_SPLIT: "late articles, before they arrive",
}


@dataclass(frozen=True)
class Scores:
    """One method's per-question scores on one split: `per_seed` (seeds x questions) per metric, `values` their
    mean over the seeds, and each seed's mean per metric."""

    ids: list[str]
    articles: list[str | None]
    per_seed: dict[str, np.ndarray]

    @property
    def values(self) -> dict[str, np.ndarray]:
        return {metric: seeds.mean(axis=0) for metric, seeds in self.per_seed.items()}

    @property
    def seed_means(self) -> dict[str, list[float]]:
        return {metric: seeds.mean(axis=1).tolist() for metric, seeds in self.per_seed.items()}

    def aligned(self, ids: list[str], metric: str) -> np.ndarray:
        """The (seeds x questions) scores of `metric` on `ids`, in that order."""
        position = {question: i for i, question in enumerate(self.ids)}
        return self.per_seed[metric][:, [position[question] for question in ids]]


@dataclass(frozen=True)
class MethodEstimate:
    """A method's mean on a split with its interval (article level, seed variance included); with several seeds,
    the standard deviation of the seeds' means (seed variance) beside the clustered standard error of the
    seed-averaged scores (article variance)."""

    estimate: Estimate
    seeds: int
    seed_sd: float | None
    article_se: float


@dataclass(frozen=True)
class Comparison:
    """`method` minus `other` on the same questions: the mean difference, its interval and p-value by the same
    article-level rule (`rule`), the corrected p; `better` says which is better when the difference is
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
    articles: int
    rule: str

    @property
    def better(self) -> str | None:
        if not self.significant:
            return None
        ahead = self.difference < 0 if self.metric in LOWER_IS_BETTER else self.difference > 0
        return self.method if ahead else self.other


@dataclass(frozen=True)
class Power:
    """What a split can detect: questions and articles, the standard deviation of the article-level paired
    differences, the minimum detectable effect (t(G-1)), and the articles needed to detect the study's chosen
    effect at the split's questions per article."""

    split: str
    metric: str
    questions: int
    articles: int
    article_sd: float
    minimum_effect: float
    effect: float | None
    articles_needed: int | None

    @property
    def per_article(self) -> float:
        return self.questions / self.articles


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


def seed_questions(records: list[dict], method: str, split: str, kind: str = MAIN) -> list[dict[str, dict]]:
    """Per finished `kind` cell of `method` (one per seed), its question records on `split` by question id."""
    return [
        {question["id"]: question for question in r["questions"][split]}
        for r in records
        if r["method"] == method and r["kind"] == kind and r["status"] == "done" and r.get("questions", {}).get(split)
    ]


def method_scores(records: list[dict], method: str, split: str, kind: str = MAIN) -> Scores | None:
    """The finished `kind` cells of `method` on `split`, over the questions every seed answered."""
    by_seed = seed_questions(records, method, split, kind)
    if not by_seed:
        return None
    ids = sorted(set.intersection(*(set(seed) for seed in by_seed)))
    if not ids:
        return None
    per_seed = {}
    for metric in METRICS:
        if all(seed[i].get(metric) is not None for seed in by_seed for i in ids):
            per_seed[metric] = np.array([[seed[i][metric] for i in ids] for seed in by_seed], dtype=float)
    return Scores(ids, [by_seed[0][i].get("article") for i in ids], per_seed)


def method_estimate(scores: Scores, metric: str, confidence: float) -> MethodEstimate:
    """A method's mean of `metric` with its article-level interval (seed variance included), and the spread over
    its seeds."""
    per_seed = scores.per_seed[metric]
    found = estimate(per_seed, scores.articles, metric not in UNBOUNDED, confidence)
    seeds = scores.seed_means[metric]
    seed_sd = statistics.stdev(seeds) if len(seeds) > 1 else None
    article_se = clustered_standard_error(per_seed.mean(axis=0), scores.articles)
    return MethodEstimate(found, len(seeds), seed_sd, article_se)


def _compare(study: StudyConfig, split: str, metric: str, a: tuple[str, Scores], b: tuple[str, Scores]) -> dict:
    """The raw comparison (p not yet corrected) of two methods on their common questions."""
    (name_a, scores_a), (name_b, scores_b) = a, b
    ids = sorted(set(scores_a.ids) & set(scores_b.ids))
    first, second = scores_a.aligned(ids, metric), scores_b.aligned(ids, metric)
    position = {question: i for i, question in enumerate(scores_a.ids)}
    articles = [scores_a.articles[position[i]] for i in ids]
    found = paired_difference(first, second, articles, study.stats.confidence, study.stats.resamples)
    return {
        "split": split,
        "metric": metric,
        "method": name_a,
        "other": name_b,
        "difference": found.mean + 0.0,  # + 0.0 turns -0.0 into 0.0
        "low": found.low + 0.0,
        "high": found.high + 0.0,
        "p_value": found.p_value,
        "n": len(ids),
        "articles": found.clusters,
        "rule": found.rule,
        "article_differences": found.article_means,
    }


def _corrected(raw: list[dict], alpha: float) -> list[Comparison]:
    """BH-adjust one family of raw comparisons."""
    adjusted = adjust_p_values([r["p_value"] for r in raw])
    fields = ("split", "metric", "method", "other", "difference", "low", "high", "p_value", "n", "articles", "rule")
    return [
        Comparison(**{key: r[key] for key in fields}, p_adjusted=p, significant=p < alpha)
        for r, p in zip(raw, adjusted, strict=True)
    ]


def _power(study: StudyConfig, split: str, metric: str, raw: list[dict]) -> Power | None:
    """Power of the split for one metric, from the largest SD of any pair's article-level differences (so the
    detectable effect holds for every pair)."""
    raw = [r for r in raw if len(r["article_differences"]) > 1]
    if not raw:
        return None
    sd = max(float(np.std(r["article_differences"], ddof=1)) for r in raw)
    n, articles = max(r["n"] for r in raw), max(r["articles"] for r in raw)
    effect = study.stats.effects.get(metric)
    needed = articles_needed(sd, effect, study.stats.alpha, study.stats.power) if effect else None
    mde = minimum_detectable_effect(sd, articles, study.stats.alpha, study.stats.power)
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
                estimates[(method, split, metric)] = method_estimate(found, metric, study.stats.confidence)
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
                    estimates[key] = method_estimate(after, metric, study.stats.confidence)
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
