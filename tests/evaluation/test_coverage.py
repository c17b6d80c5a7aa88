"""The study's intervals cover the true mean at 95 % when articles, not questions, are sampled: a seeded simulation
of G articles x 4 questions with a shared article effect (intra-article correlation 0.3), at the article counts
studies have (5 squad_matched's unseen split, 10 and 30 the fictional ones).

Bound: 0.93 over 2,000 draws. A correct 95 % interval falls below it with probability < 0.01 % (binomial SD 0.005
at 2,000 draws); the question-level percentile bootstrap this replaces scores 0.48-0.87 here and fails every case."""

import numpy as np
import pytest

from rag_pet.evaluation.statistics import estimate, sign_flip_p

DRAWS = 2000
QUESTIONS_PER_ARTICLE = 4
CORRELATION = 0.3
BOUND = 0.93


def interval(values: np.ndarray, articles: list[str], bounded: bool) -> tuple[float, float]:
    """The interval under test: the study's own (`estimate`), as the analysis calls it for one seed."""
    found = estimate(values, articles, bounded)
    return found.low, found.high


def _scores(rng: np.random.Generator, kind: str, articles: int) -> tuple[np.ndarray, float]:
    """One draw of per-question scores and the true mean they estimate."""
    shape = (articles, QUESTIONS_PER_ARTICLE)
    if kind == "nll":  # graded, unbounded: article effect + question noise
        effect = rng.normal(0.0, np.sqrt(CORRELATION), articles)
        return (3.0 + effect[:, None] + rng.normal(0.0, np.sqrt(1 - CORRELATION), shape)).ravel(), 3.0
    mean = {"em": 0.3, "em_high": 0.85, "f1_rare": 0.05}[kind]
    total = 1 / CORRELATION - 1  # Beta(a, b) article rates with a + b = this: intra-article correlation 0.3
    rate = rng.beta(mean * total, (1 - mean) * total, articles)
    hit = rng.random(shape) < rate[:, None]
    if kind == "f1_rare":  # F1-like: 0 or a partial-to-full overlap; mean 0.75 x rate
        return np.where(hit, rng.uniform(0.5, 1.0, shape), 0.0).ravel(), 0.75 * mean
    return hit.astype(float).ravel(), mean


@pytest.mark.parametrize("articles", [5, 10, 30])
@pytest.mark.parametrize("kind", ["em", "em_high", "f1_rare", "nll"])
def test_a_method_interval_covers_at_the_study_article_counts(kind, articles):
    rng = np.random.default_rng(articles)
    names = np.repeat([f"article{i}" for i in range(articles)], QUESTIONS_PER_ARTICLE).tolist()
    covered = 0
    for _ in range(DRAWS):
        values, truth = _scores(rng, kind, articles)
        low, high = interval(values, names, bounded=kind != "nll")
        covered += low <= truth <= high
    assert covered / DRAWS >= BOUND, f"{kind} at {articles} articles: coverage {covered / DRAWS:.3f}"


@pytest.mark.parametrize("articles", [10, 30])
def test_the_paired_difference_test_keeps_its_level(articles):
    """The difference interval is the sign-flip test inverted, so it covers the true difference exactly when the
    test at that difference does not reject: the test's level is the interval's coverage. Two methods, 0/1 scores,
    each with its own article effects (5 articles cannot reject at all: their interval is unbounded)."""
    rng = np.random.default_rng(100 + articles)
    covered = 0
    for _ in range(DRAWS // 2):
        a, _ = _scores(rng, "em", articles)
        b, _ = _scores(rng, "em", articles)
        sums = (a - b).reshape(articles, QUESTIONS_PER_ARTICLE).sum(axis=1)
        covered += sign_flip_p(sums, np.full(articles, float(QUESTIONS_PER_ARTICLE)), 0.0, resamples=999) >= 0.05
    assert covered / (DRAWS // 2) >= BOUND - 0.01  # 1,000 draws: binomial SD 0.007
