"""Intervals, paired tests and power checked against hand-computed known cases."""

import math

import numpy as np
import pytest

from rag_pet.evaluation.statistics import (
    adjust_p_values,
    clustered_standard_error,
    design_effect,
    mcnemar_exact,
    mean_interval,
    minimum_detectable_effect,
    paired_permutation,
    proportion_interval,
    questions_needed,
)

Z = 1.959963984540054


def wilson(successes: int, n: int) -> tuple[float, float]:
    """The Wilson score interval by its formula (Wilson 1927)."""
    p = successes / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return centre - half, centre + half


@pytest.mark.parametrize(("successes", "n"), [(3, 24), (0, 24), (24, 24), (7, 50)])
def test_independent_questions_get_the_wilson_interval(successes, n):
    values = np.array([1.0] * successes + [0.0] * (n - successes))
    found = proportion_interval(values, None)
    low, high = wilson(successes, n)
    assert found.mean == pytest.approx(successes / n)
    assert (found.low, found.high) == pytest.approx((max(low, 0.0), min(high, 1.0)), abs=1e-9)
    if successes == 3:  # the figures quoted for 3 of 24 EM in the study's review
        assert (round(found.low, 2), round(found.high, 2)) == (0.04, 0.31)


def test_clustered_standard_error_and_design_effect_by_hand():
    values = np.array([1.0, 1.0, 0.0, 0.0])
    # residuals +0.5 +0.5 | -0.5 -0.5: cluster sums +1, -1 -> sqrt(2) / 4
    assert clustered_standard_error(values, ["a", "a", "b", "b"]) == pytest.approx(math.sqrt(2) / 4)
    assert clustered_standard_error(values, None) == pytest.approx(0.25)  # sqrt(0.25 / 4)
    assert design_effect(values, ["a", "a", "b", "b"]) == pytest.approx(2.0)
    assert design_effect(values, ["a", "b", "a", "b"]) == 1.0  # clusters that balance out never add data


def test_correlated_articles_widen_the_proportion_interval():
    values = np.array([1.0] * 6 + [0.0] * 18)
    articles = ["a"] * 6 + ["b"] * 6 + ["c"] * 6 + ["d"] * 6  # every correct answer is about article a
    clustered, independent = proportion_interval(values, articles), proportion_interval(values, None)
    assert clustered.high - clustered.low > independent.high - independent.low
    assert clustered.clusters == 4 and independent.clusters == 24


def test_cluster_bootstrap_resamples_articles_not_questions():
    rng = np.random.default_rng(0)
    article_effect = np.repeat(rng.normal(0, 1, 6), 10)
    values = article_effect + rng.normal(0, 0.1, 60)  # almost all variance between articles
    articles = np.repeat([f"a{i}" for i in range(6)], 10).tolist()
    clustered = mean_interval(values, articles)
    independent = mean_interval(values, None)
    assert clustered.low < values.mean() < clustered.high
    assert clustered.high - clustered.low > 2 * (independent.high - independent.low)
    assert mean_interval(values, articles) == clustered  # seeded: the same interval twice


def test_a_constant_sample_has_a_point_interval():
    found = mean_interval(np.full(8, 0.25), ["a", "b"] * 4)
    assert (found.low, found.mean, found.high) == (0.25, 0.25, 0.25)


def test_exact_mcnemar_on_a_hand_made_table():
    # discordant pairs: 1 where only a is right, 6 where only b is; concordant pairs do not count
    a = np.array([1, 0, 0, 0, 0, 0, 0, 1, 1, 0])
    b = np.array([0, 1, 1, 1, 1, 1, 1, 1, 1, 0])
    assert mcnemar_exact(a, b) == pytest.approx(2 * (1 + 7) / 2**7)  # 2 P(X <= 1), X ~ Bin(7, 1/2)
    assert mcnemar_exact(a, a) == 1.0


def test_paired_permutation_test_is_exact_for_small_samples():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.zeros(4)
    # 16 equally likely sign patterns; only all + and all - reach |mean| = 2.5
    assert paired_permutation(a, b) == pytest.approx(2 / 16)
    assert paired_permutation(b, a) == pytest.approx(2 / 16)
    assert paired_permutation(a, a) == 1.0
    assert paired_permutation(np.ones(1), np.zeros(1)) == 1.0  # one question (a tiny split of a user's data)
    same_mean = np.array([1.0, -1.0, 2.0, -2.0])
    assert paired_permutation(same_mean, np.zeros(4)) == pytest.approx(1.0)


def test_benjamini_hochberg_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 0.01 x 3/1, 0.03 x 3/2, 0.04 x 3/3, then made monotone from the top
    assert adjust_p_values([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.04, 0.04])
    assert adjust_p_values([]) == []


def test_minimum_detectable_effect_and_questions_needed_are_inverses():
    mde = minimum_detectable_effect(0.3, 100)
    assert mde == pytest.approx((Z + 0.8416212335729143) * 0.3 / 10)
    assert questions_needed(0.3, mde) == 100
    assert questions_needed(0.3, mde / 2) == pytest.approx(400, abs=1)
