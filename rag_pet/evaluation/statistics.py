"""Intervals, paired tests and power for per-question scores, after Miller (2024), "Adding Error Bars to Evals"
(arXiv 2411.00640).

Questions about one article are not independent, so intervals and the variance behind power are clustered on the
article: a cluster bootstrap (articles resampled) for graded scores, and a Wilson interval on the design-effect
sample size (Kish) for 0/1 scores, where a bootstrap collapses to a point at 0 or 1. Paired tests compare two
methods on the same questions: exact McNemar for 0/1 scores, a paired permutation test for graded ones. Every
computation is scipy's; this module only arranges the data and names the choices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    """A mean with its two-sided confidence interval over `n` questions in `clusters` articles."""

    mean: float
    low: float
    high: float
    n: int
    clusters: int


def _cluster_ids(clusters: list[str | None] | None, n: int) -> np.ndarray:
    """Integer cluster ids; a question without an article is its own cluster."""
    names = clusters if clusters is not None else [None] * n
    keys = [name if name is not None else f"\0question {i}" for i, name in enumerate(names)]
    return np.unique(keys, return_inverse=True)[1]


def clustered_standard_error(values: np.ndarray, clusters: list[str | None] | None = None) -> float:
    """The cluster-robust standard error of the mean (Miller 2024, eq. 4): sqrt(sum_c (sum_{i in c} (x_i -
    mean))^2) / n; with one question per cluster it is the plain (population-variance) standard error."""
    values = np.asarray(values, dtype=float)
    ids = _cluster_ids(clusters, len(values))
    residual_sums = np.bincount(ids, weights=values - values.mean())
    return float(math.sqrt(np.sum(residual_sums**2)) / len(values))


def design_effect(values: np.ndarray, clusters: list[str | None] | None) -> float:
    """Variance of the clustered mean over that of independent questions (>= 1: clustering never adds data)."""
    values = np.asarray(values, dtype=float)
    independent = values.var() / len(values)
    if independent == 0:
        return 1.0
    return max(1.0, clustered_standard_error(values, clusters) ** 2 / independent)


def proportion_interval(values: np.ndarray, clusters: list[str | None] | None, confidence: float = 0.95) -> Estimate:
    """Mean of 0/1 scores with a Wilson score interval on the effective sample size n / design effect (rounded
    down): honest at 0 of n, where a bootstrap interval is the point 0."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    effective = max(1, math.floor(n / design_effect(values, clusters) + 1e-9))  # 1e-9: deff 1 in float is 1 + eps
    successes = round(values.mean() * effective)
    interval = stats.binomtest(successes, effective).proportion_ci(confidence_level=confidence, method="wilson")
    count = len(np.unique(_cluster_ids(clusters, n)))
    return Estimate(float(values.mean()), float(interval.low), float(interval.high), n, count)


def mean_interval(
    values: np.ndarray,
    clusters: list[str | None] | None,
    confidence: float = 0.95,
    resamples: int = 9999,
    seed: int = 0,
) -> Estimate:
    """Mean of graded scores with a percentile cluster-bootstrap interval: articles are resampled whole and the
    mean is the ratio of resampled score sums to question counts."""
    values = np.asarray(values, dtype=float)
    ids = _cluster_ids(clusters, len(values))
    sums, counts = np.bincount(ids, weights=values), np.bincount(ids).astype(float)
    mean = float(values.mean())
    if len(sums) < 2 or np.ptp(values) == 0:  # nothing to resample: a single article, or every score equal
        return Estimate(mean, mean, mean, len(values), len(sums))
    result = stats.bootstrap(
        (sums, counts),
        lambda s, c, axis=-1: s.sum(axis=axis) / c.sum(axis=axis),
        paired=True,
        vectorized=True,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return Estimate(
        mean, float(result.confidence_interval.low), float(result.confidence_interval.high), len(values), len(sums)
    )


def estimate(
    values: np.ndarray, clusters: list[str | None] | None, binary: bool, confidence: float = 0.95, seed: int = 0
) -> Estimate:
    """`proportion_interval` for 0/1 scores, `mean_interval` for graded ones."""
    if binary:
        return proportion_interval(values, clusters, confidence)
    return mean_interval(values, clusters, confidence, seed=seed)


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided exact McNemar p-value of paired 0/1 scores: a binomial test on the discordant pairs."""
    a, b = np.asarray(a).astype(bool), np.asarray(b).astype(bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def paired_permutation(a: np.ndarray, b: np.ndarray, resamples: int = 9999, seed: int = 0) -> float:
    """Two-sided p-value of a paired permutation test of the mean difference (each question's two scores swapped
    at random; exact when 2^n is at most `resamples`)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if np.all(a == b) or len(a) < 2:  # one pair: its swap is the same difference negated, so p = 1 exactly
        return 1.0
    result = stats.permutation_test(
        (a, b),
        lambda x, y, axis=-1: np.mean(x - y, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return float(result.pvalue)


def paired_p_value(a: np.ndarray, b: np.ndarray, binary: bool, resamples: int = 9999, seed: int = 0) -> float:
    """Exact McNemar for 0/1 scores, the paired permutation test for graded ones."""
    return mcnemar_exact(a, b) if binary else paired_permutation(a, b, resamples, seed)


def adjust_p_values(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values of one family of tests (scipy's `false_discovery_control`)."""
    if not p_values:
        return []
    return [float(p) for p in stats.false_discovery_control(np.asarray(p_values, dtype=float), method="bh")]


def minimum_detectable_effect(difference_sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference a two-sided paired test at `alpha` detects with probability `power` over
    `n` questions whose paired differences have standard deviation `difference_sd` (Miller 2024, sec. 5)."""
    return (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * difference_sd / math.sqrt(n)


def questions_needed(difference_sd: float, effect: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Questions a paired comparison needs to detect a true difference of `effect` (the inverse of
    `minimum_detectable_effect`)."""
    if difference_sd == 0:
        return 1
    return math.ceil(((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * difference_sd / effect) ** 2)


def difference_sd(a: np.ndarray, b: np.ndarray, clusters: list[str | None] | None) -> float:
    """The per-question standard deviation of the paired differences that makes their clustered standard error:
    sqrt(n) x clustered SE, so power analysis accounts for the articles too."""
    differences = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return clustered_standard_error(differences, clusters) * math.sqrt(len(differences))
