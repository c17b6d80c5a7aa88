"""Intervals, paired tests and power at the unit the data is sampled in: the article (and, with several seeds, the
training seed), after Miller (2024), "Adding Error Bars to Evals" (arXiv 2411.00640).

Questions about one article are not independent, and a study draws articles, not questions. So:

- A method's mean (over questions, then seeds) has a CR2 cluster-robust variance (Bell & McCaffrey 2002) on
  G - 1 degrees of freedom over G articles; for the intercept-only model CR2 has the closed form
  sum_g E_g^2 / (1 - n_g / n) / n^2 (E_g: article g's summed residuals), which statsmodels lacks (it has CR1 only).
  With several seeds the variance of the seeds' means is added and the degrees of freedom are Welch-Satterthwaite's.
- Unbounded scores (answer NLL) get the t interval from it. Scores in [0, 1] (EM, F1, recall) get the Korn &
  Graubard (1998) interval: Clopper-Pearson on the design-effect sample size, scaled by (t(n - 1) / t(df))^2 for
  the few articles (R survey's `svyciprop(method="beta")`); a t interval under-covers skewed [0, 1] scores (0.87
  for a rare F1 at 30 articles in `tests/evaluation/test_coverage.py`'s simulation).
- Scores bounded in [0, 1] that are all 0 or all 1 get the Clopper-Pearson bound over the articles alone: every
  article could be one observation. Other scores without variation get no interval and say so.
- Two methods are compared on the same questions by a sign-flip randomization test of the articles' summed
  differences (exact over all 2^G flips up to `EXACT_ARTICLES` articles, else seeded Monte Carlo; scipy's
  `permutation_test` p-values, computed on one fixed set of sign patterns so the test can be inverted), and the
  difference's interval is that same test inverted, so it excludes 0 exactly when p < 1 - confidence. With
  several seeds the t test with seed variance must reject too (the more conservative of the two, both ways).
- Power is the paired t test's over articles (statsmodels' `TTestPower`, t(G - 1)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.power import TTestPower

EXACT_ARTICLES = 16  # 2^16 sign patterns enumerated; beyond, a Monte Carlo p >= 2 / (resamples + 1) > 2 / 2^17

CR2_T = "CR2 cluster-robust, t(G-1)"
CR2_T_SEEDS = "CR2 cluster-robust + seed variance, Welch-Satterthwaite t"
KORN_GRAUBARD = "Korn-Graubard clustered Clopper-Pearson"
KORN_GRAUBARD_SEEDS = "Korn-Graubard clustered Clopper-Pearson with seed variance"
ARTICLE_BOUND = "Clopper-Pearson over the articles (no variation)"
NO_VARIATION = "no variation"
SIGN_FLIP = "article sign-flip test, inverted"
SIGN_FLIP_AND_T = "article sign-flip test and t with seed variance, both inverted"


@dataclass(frozen=True)
class Estimate:
    """A mean with its two-sided interval over `n` questions in `clusters` articles and `seeds` seeds, and the rule
    that made the interval (`low == high == mean` only when `rule` is `NO_VARIATION`)."""

    mean: float
    low: float
    high: float
    n: int
    clusters: int
    seeds: int = 1
    rule: str = CR2_T

    @property
    def varies(self) -> bool:
        return self.rule != NO_VARIATION


@dataclass(frozen=True)
class Difference:
    """`a - b` on the same questions: the mean difference, its interval, the p-value of the same test, the
    articles it was sampled over, each article's mean difference (what power is computed from) and the rule."""

    mean: float
    low: float
    high: float
    p_value: float
    n: int
    clusters: int
    rule: str
    article_means: np.ndarray


def _cluster_ids(clusters: list[str | None] | None, n: int) -> np.ndarray:
    """Integer cluster ids; a question without an article is its own cluster."""
    names = clusters if clusters is not None else [None] * n
    keys = [name if name is not None else f"\0question {i}" for i, name in enumerate(names)]
    return np.unique(keys, return_inverse=True)[1]


def _as_seeds(values: np.ndarray) -> np.ndarray:
    """Scores as a (seeds, questions) array: one row per seed."""
    values = np.asarray(values, dtype=float)
    return values[None, :] if values.ndim == 1 else values


def cr2_variance(values: np.ndarray, clusters: list[str | None] | None) -> float:
    """The CR2 (bias-reduced linearisation) variance of the mean of `values` clustered by `clusters`: for an
    intercept-only model sum_g E_g^2 / (1 - n_g / n) / n^2; with equal article sizes, the variance of the article
    means over G. Infinite with one article."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    ids = _cluster_ids(clusters, n)
    sums = np.bincount(ids, weights=values - values.mean())
    sizes = np.bincount(ids).astype(float)
    if len(sizes) < 2:
        return math.inf
    return float(np.sum(sums**2 / (1.0 - sizes / n)) / n**2)


def clustered_standard_error(values: np.ndarray, clusters: list[str | None] | None = None) -> float:
    """The CR2 cluster-robust standard error of the mean."""
    return math.sqrt(cr2_variance(values, clusters))


def _satterthwaite(parts: list[tuple[float, int]]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variance estimates, each with its own df."""
    total = sum(v for v, _ in parts)
    denominator = sum(v**2 / df for v, df in parts if df > 0 and v > 0)
    return total**2 / denominator if denominator > 0 else math.inf


def seed_variance(values: np.ndarray) -> tuple[float, int]:
    """The variance of the mean of the seeds' means (training randomness) and its degrees of freedom; (0, 0) for
    one seed."""
    seeds = _as_seeds(values)
    if len(seeds) < 2:
        return 0.0, 0
    return float(np.var(seeds.mean(axis=1), ddof=1) / len(seeds)), len(seeds) - 1


def _t_interval(mean: float, parts: list[tuple[float, int]], confidence: float) -> tuple[float, float, float]:
    """(low, high, two-sided p of mean = 0) from the summed variance parts with Satterthwaite's df."""
    variance = sum(v for v, _ in parts)
    if not math.isfinite(variance):
        return -math.inf, math.inf, 1.0
    if variance == 0:
        return mean, mean, 1.0 if mean == 0 else 0.0
    df = _satterthwaite(parts)
    se = math.sqrt(variance)
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    return mean - half, mean + half, float(2 * stats.t.sf(abs(mean) / se, df))


def clopper_pearson(successes: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """The Clopper-Pearson interval for `successes` of `n` (both may be fractional: an effective sample size)."""
    tail = (1 - confidence) / 2
    low = stats.beta.ppf(tail, successes, n - successes + 1) if successes > 0 else 0.0
    high = stats.beta.ppf(1 - tail, successes + 1, n - successes) if successes < n else 1.0
    return float(low), float(high)


def korn_graubard(mean: float, n: int, variance: float, df: float, confidence: float = 0.95) -> tuple[float, float]:
    """Korn & Graubard (1998): Clopper-Pearson for a [0, 1] mean over `n` questions on the effective sample size
    mean (1 - mean) / `variance`, times (t(n-1) / t(df))^2 for the few articles (`df`), and at most n."""
    if not math.isfinite(variance) or df <= 0:
        return 0.0, 1.0
    effective = n if variance == 0 else min(n, mean * (1 - mean) / variance)
    quantile = 0.5 + confidence / 2
    effective = min(n, effective * (stats.t.ppf(quantile, n - 1) / stats.t.ppf(quantile, df)) ** 2)
    return clopper_pearson(mean * effective, effective, confidence)


def estimate(
    values: np.ndarray, clusters: list[str | None] | None, bounded: bool, confidence: float = 0.95
) -> Estimate:
    """A method's mean over questions and seeds (`values`: one row per seed, or one row) with its interval by the
    rule the module docstring gives; `bounded`: every score lies in [0, 1]."""
    seeds = _as_seeds(values)
    per_question = seeds.mean(axis=0)
    mean = float(per_question.mean())
    n, count = len(per_question), len(np.unique(_cluster_ids(clusters, len(per_question))))
    shape = {"n": n, "clusters": count, "seeds": len(seeds)}
    if np.ptp(seeds) == 0:
        if bounded and mean in (0.0, 1.0):
            low, high = clopper_pearson(mean * count, count, confidence)
            return Estimate(mean, low, high, rule=ARTICLE_BOUND, **shape)
        return Estimate(mean, mean, mean, rule=NO_VARIATION, **shape)
    parts = [(cr2_variance(per_question, clusters), count - 1), seed_variance(seeds)]
    if bounded:
        variance, df = sum(v for v, _ in parts), _satterthwaite(parts)
        low, high = korn_graubard(mean, n, variance, df, confidence)
        return Estimate(mean, low, high, rule=KORN_GRAUBARD_SEEDS if len(seeds) > 1 else KORN_GRAUBARD, **shape)
    low, high, _ = _t_interval(mean, parts, confidence)
    return Estimate(mean, low, high, rule=CR2_T_SEEDS if len(seeds) > 1 else CR2_T, **shape)


def _article_sums(differences: np.ndarray, clusters: list[str | None] | None) -> tuple[np.ndarray, np.ndarray]:
    ids = _cluster_ids(clusters, len(differences))
    return np.bincount(ids, weights=differences), np.bincount(ids).astype(float)


class SignFlipTest:
    """The two-sided sign-flip randomization test that the articles' summed differences `sums` (over `sizes`
    questions each) centre on `delta` per question, over one fixed set of sign patterns: all 2^G up to
    `EXACT_ARTICLES` articles, else `resamples` seeded draws. Its p-values are scipy's one-sample
    `permutation_test(..., permutation_type="samples")` (the same tolerance, the +1 of a Monte Carlo p; a test
    checks them equal), computed here because scipy has no confidence interval: inverting the test needs its p at
    dozens of `delta` on the same patterns, and scipy draws its null anew each call (about 25 ms at 40 articles,
    minutes for a study's few hundred comparisons)."""

    def __init__(self, sums: np.ndarray, sizes: np.ndarray, resamples: int = 9999, seed: int = 0) -> None:
        self.sums, self.sizes = np.asarray(sums, dtype=float), np.asarray(sizes, dtype=float)
        count = len(self.sums)
        self.exact = count <= EXACT_ARTICLES
        if self.exact:
            signs = 1 - 2 * ((np.arange(2**count)[:, None] >> np.arange(count)) & 1)
        else:
            signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(resamples, count))
        self.null_sums, self.null_sizes = signs @ self.sums, signs @ self.sizes

    def p_value(self, delta: float = 0.0) -> float:
        """Two-sided p of the hypothesis that the mean per-question difference is `delta`."""
        centred = self.sums - delta * self.sizes
        if len(centred) < 2 or np.all(centred == 0):
            return 1.0
        observed = float(centred.sum())
        null = self.null_sums - delta * self.null_sizes
        tolerance = abs(observed) * np.finfo(float).eps * 100  # scipy's: ties in theory, apart in floating point
        adjustment = 0 if self.exact else 1
        less = (np.sum(null <= observed + tolerance) + adjustment) / (len(null) + adjustment)
        greater = (np.sum(null >= observed - tolerance) + adjustment) / (len(null) + adjustment)
        return float(min(1.0, 2 * min(less, greater)))

    def bound(self, mean: float, direction: int, alpha: float) -> float:
        """The farthest mean difference from `mean` in `direction` (+1 up, -1 down) that the test does not reject
        at `alpha` (p falls monotonically along the way); infinite when no difference can be rejected."""
        spread = float(np.max(np.abs(self.sums / self.sizes - mean))) or 1.0
        step = spread
        while self.p_value(mean + direction * step) >= alpha:
            step *= 2
            if step > 1e6 * spread:
                return direction * math.inf
        inside, outside = 0.0, step
        while outside - inside > 1e-5 * spread:
            middle = (inside + outside) / 2
            if self.p_value(mean + direction * middle) >= alpha:
                inside = middle
            else:
                outside = middle
        return mean + direction * inside


def sign_flip_p(sums: np.ndarray, sizes: np.ndarray, delta: float = 0.0, resamples: int = 9999, seed: int = 0) -> float:
    """Two-sided p of the article sign-flip test (`SignFlipTest`) at `delta`."""
    return SignFlipTest(sums, sizes, resamples, seed).p_value(delta)


def paired_difference(
    a: np.ndarray,
    b: np.ndarray,
    clusters: list[str | None] | None,
    confidence: float = 0.95,
    resamples: int = 9999,
    seed: int = 0,
) -> Difference:
    """`a - b` on the same questions (each one row per seed, or one row): the article sign-flip test and its
    inverted interval; with several seeds on either side also the t test whose variance adds each side's seed
    variance, and then p is the larger and the interval the union of the two."""
    a_seeds, b_seeds = _as_seeds(a), _as_seeds(b)
    differences = a_seeds.mean(axis=0) - b_seeds.mean(axis=0)
    mean = float(differences.mean())
    sums, sizes = _article_sums(differences, clusters)
    shape = {"n": len(differences), "clusters": len(sums), "article_means": sums / sizes}
    alpha = 1 - confidence
    test = SignFlipTest(sums, sizes, resamples, seed)
    p = test.p_value(0.0)
    if np.ptp(differences) == 0 and max(len(a_seeds), len(b_seeds)) == 1:  # the same difference on every question
        return Difference(mean, mean, mean, p, rule=NO_VARIATION, **shape)
    if len(sums) < 2:
        low, high = -math.inf, math.inf
    else:
        low, high = test.bound(mean, -1, alpha), test.bound(mean, +1, alpha)
        if p >= alpha:  # p can jump at 0 itself (one article differs): the bisection's tolerance must not drop it
            low, high = min(low, 0.0), max(high, 0.0)
    if max(len(a_seeds), len(b_seeds)) == 1:
        return Difference(mean, low, high, p, rule=SIGN_FLIP, **shape)
    parts = [(cr2_variance(differences, clusters), len(sums) - 1), seed_variance(a_seeds), seed_variance(b_seeds)]
    t_low, t_high, t_p = _t_interval(mean, parts, confidence)
    return Difference(mean, min(low, t_low), max(high, t_high), max(p, t_p), rule=SIGN_FLIP_AND_T, **shape)


def smallest_p(articles: int) -> float:
    """The smallest two-sided p an exact sign-flip test over `articles` articles can give: 2 / 2^G."""
    return min(1.0, 2.0 / 2.0**articles)


def adjust_p_values(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values of one family of tests (scipy's `false_discovery_control`)."""
    if not p_values:
        return []
    return [float(p) for p in stats.false_discovery_control(np.asarray(p_values, dtype=float), method="bh")]


def minimum_detectable_effect(article_sd: float, articles: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference a two-sided paired t test over `articles` articles (t(G-1), statsmodels'
    `TTestPower`) detects at `alpha` with probability `power`, given the SD of the article-level differences."""
    if articles < 2 or article_sd == 0:
        return math.inf if articles < 2 else 0.0
    standardised = TTestPower().solve_power(nobs=articles, alpha=alpha, power=power, alternative="two-sided")
    return float(standardised * article_sd)


def articles_needed(article_sd: float, effect: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Articles a paired comparison needs to detect a true difference `effect` (the inverse of
    `minimum_detectable_effect`), and at least the fewest over which an exact sign-flip test can reach `alpha`."""
    fewest = math.ceil(math.log2(2 / alpha))
    if article_sd == 0:
        return fewest
    standardised, solver = effect / article_sd, TTestPower()
    if not solver.power(standardised, nobs=2, alpha=alpha, alternative="two-sided") < power:
        return fewest  # 2 articles suffice (or the effect is too large to compute): the solver would fail
    found = solver.solve_power(effect_size=standardised, alpha=alpha, power=power, alternative="two-sided")
    return max(fewest, math.ceil(found))
