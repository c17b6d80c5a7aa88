"""Article-level intervals, tests and power checked against hand-computed known cases."""

import math

import numpy as np
import pytest
from scipy import stats

from rag_pet.evaluation.statistics import (
    ARTICLE_BOUND,
    CR2_T,
    KORN_GRAUBARD,
    NO_VARIATION,
    SIGN_FLIP,
    SIGN_FLIP_AND_T,
    adjust_p_values,
    articles_needed,
    clopper_pearson,
    cr2_variance,
    estimate,
    minimum_detectable_effect,
    paired_difference,
    sign_flip_p,
    smallest_p,
)


def test_cr2_with_equal_articles_is_the_variance_of_the_article_means_over_g():
    rng = np.random.default_rng(0)
    values = rng.normal(size=40)
    articles = np.repeat([f"a{i}" for i in range(10)], 4).tolist()
    article_means = values.reshape(10, 4).mean(axis=1)
    assert cr2_variance(values, articles) == pytest.approx(np.var(article_means, ddof=1) / 10)
    assert cr2_variance(values, ["a"] * 40) == math.inf  # one article: nothing to estimate from


def test_a_graded_score_gets_the_t_interval_over_article_means():
    rng = np.random.default_rng(1)
    values = rng.normal(3.0, 1.0, 40)
    articles = np.repeat([f"a{i}" for i in range(10)], 4).tolist()
    found = estimate(values, articles, bounded=False)
    expected = stats.ttest_1samp(values.reshape(10, 4).mean(axis=1), 0.0).confidence_interval()
    assert found.rule == CR2_T and (found.n, found.clusters) == (40, 10)
    assert (found.low, found.high) == pytest.approx((expected.low, expected.high))


def test_one_question_per_article_gives_clopper_pearson_on_the_questions():
    values = np.array([1.0] * 7 + [0.0] * 13)
    found = estimate(values, [f"a{i}" for i in range(20)], bounded=True)
    # n = G: the Korn-Graubard factor (t(19) / t(19))^2 is 1, and the unbiased variance p(1-p) / (n-1) makes the
    # effective size n - 1, so Clopper-Pearson on 7 x 19/20 of 19
    tail = 0.025
    successes, n = 7 * 19 / 20, 19
    low, high = (
        stats.beta.ppf(tail, successes, n - successes + 1),
        stats.beta.ppf(1 - tail, successes + 1, n - successes),
    )
    assert found.rule == KORN_GRAUBARD
    assert (found.low, found.high) == pytest.approx((low, high))
    wider = stats.binomtest(7, 20).proportion_ci(method="exact")
    assert found.low < wider.low and found.high > wider.high


def test_correlated_articles_widen_the_proportion_interval():
    values = np.array([1.0] * 6 + [0.0] * 18)
    clustered = estimate(values, ["a"] * 6 + ["b"] * 6 + ["c"] * 6 + ["d"] * 6, bounded=True)  # all hits in a
    independent = estimate(values, None, bounded=True)
    assert clustered.high - clustered.low > independent.high - independent.low
    assert clustered.clusters == 4 and independent.clusters == 24


def test_all_zero_scores_get_the_bound_their_articles_allow_and_nothing_is_zero_width():
    zeros = estimate(np.zeros(40), np.repeat([f"a{i}" for i in range(10)], 4).tolist(), bounded=True)
    assert zeros.rule == ARTICLE_BOUND and zeros.low == 0.0
    assert zeros.high == pytest.approx(1 - 0.025 ** (1 / 10))  # Clopper-Pearson 0 of 10 articles
    ones = estimate(np.ones(8), ["a", "b"] * 4, bounded=True)
    assert ones.high == 1.0 and ones.low == pytest.approx(0.025 ** (1 / 2))
    flat = estimate(np.full(8, 3.5), ["a", "b"] * 4, bounded=False)
    assert flat.rule == NO_VARIATION and not flat.varies


def test_seed_variance_widens_the_interval_and_names_its_rule():
    rng = np.random.default_rng(2)
    articles = np.repeat([f"a{i}" for i in range(10)], 4).tolist()
    shared = rng.normal(3.0, 0.5, 40)
    one_seed = estimate(shared, articles, bounded=False)
    seeds = np.stack([shared + shift for shift in (-0.4, 0.0, 0.4)])  # seeds move every question together
    several = estimate(seeds, articles, bounded=False)
    assert several.seeds == 3 and several.rule != one_seed.rule
    assert several.mean == pytest.approx(one_seed.mean)
    assert several.high - several.low > 3 * (one_seed.high - one_seed.low)


def test_sign_flip_test_is_exact_and_floored_at_two_over_two_to_the_articles():
    # 10 articles all favouring one method: only the identity and the all-flipped pattern are as extreme
    assert sign_flip_p(np.arange(1.0, 11.0), np.ones(10)) == pytest.approx(smallest_p(10)) == pytest.approx(2 / 1024)
    # 4 articles: 16 equally likely sign patterns; only all + and all - reach |sum| = 10
    assert sign_flip_p(np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4)) == pytest.approx(2 / 16)
    assert sign_flip_p(np.zeros(4), np.ones(4)) == 1.0
    # five articles can never reach p < 0.0625
    assert sign_flip_p(np.full(5, 9.0), np.ones(5)) == pytest.approx(0.0625)


@pytest.mark.parametrize("articles", [6, 12, 40])
def test_sign_flip_p_values_are_scipys_permutation_test(articles):
    rng = np.random.default_rng(articles)
    sums, sizes = rng.normal(0.4, 1.0, articles), rng.integers(1, 4, articles).astype(float)
    for delta in (0.0, 0.2, -0.3):
        ours = sign_flip_p(sums, sizes, delta)
        theirs = stats.permutation_test(
            (sums - delta * sizes,),
            lambda x, axis=-1: np.sum(x, axis=axis),
            permutation_type="samples",
            vectorized=True,
            n_resamples=np.inf if articles <= 16 else 9999,
            rng=np.random.default_rng(0),
        ).pvalue
        if articles <= 16:  # every sign pattern: the same null distribution, the same p
            assert ours == pytest.approx(theirs, abs=1e-12)
        else:  # Monte Carlo: other draws of the same null, within 4 standard errors
            assert ours == pytest.approx(theirs, abs=4 * math.sqrt(theirs * (1 - theirs) / 9999) + 2e-4)


def test_the_difference_interval_is_the_inverted_test():
    rng = np.random.default_rng(3)
    articles = np.repeat([f"a{i}" for i in range(12)], 3).tolist()
    a, b = rng.normal(0.5, 1.0, 36), rng.normal(0.0, 1.0, 36)
    found = paired_difference(a, b, articles)
    sums = np.bincount(np.repeat(np.arange(12), 3), weights=a - b)
    sizes = np.full(12, 3.0)
    assert found.rule == SIGN_FLIP and found.p_value == pytest.approx(sign_flip_p(sums, sizes))
    assert found.low < found.mean < found.high
    for bound, outward in ((found.low, -1), (found.high, 1)):
        assert sign_flip_p(sums, sizes, bound) >= 0.05  # inside: not rejected
        assert sign_flip_p(sums, sizes, bound + outward * 1e-3 * np.ptp(sums)) < 0.05  # just outside: rejected
    assert (found.p_value < 0.05) == (not found.low <= 0.0 <= found.high)


def test_an_interval_holds_zero_whenever_the_test_does_not_reject_it():
    # one article of 40 differs: p = 1 at 0, yet any positive difference puts every article on one side
    a, b = np.zeros(40), np.zeros(40)
    b[0] = 0.25
    found = paired_difference(a, b, [f"a{i}" for i in range(40)])
    assert found.p_value == 1.0 and found.low < 0.0 <= found.high


def test_five_articles_cannot_bound_a_difference():
    found = paired_difference(np.ones(10), np.array([0.0, 1.0] * 5), np.repeat(list("abcde"), 2).tolist())
    assert found.p_value >= 0.0625 and found.low == -math.inf and found.high == math.inf


def test_an_identical_difference_everywhere_is_marked_without_an_interval():
    found = paired_difference(np.full(12, 2.0), np.full(12, 3.0), [f"a{i}" for i in range(12)])
    assert found.rule == NO_VARIATION and found.mean == -1.0 and found.p_value == pytest.approx(smallest_p(12))
    many = paired_difference(np.full(40, 2.0), np.full(40, 3.0), [f"a{i}" for i in range(40)])
    assert many.p_value == pytest.approx(2 / 10000)  # Monte Carlo beyond 16 articles: 2 / (resamples + 1)


def test_seeds_make_the_difference_test_the_more_conservative_of_two():
    rng = np.random.default_rng(4)
    articles = np.repeat([f"a{i}" for i in range(10)], 4).tolist()
    base = rng.normal(0.0, 1.0, 40)
    a = np.stack([base + 0.3 + shift for shift in (-0.5, 0.0, 0.5)])  # a seed-to-seed spread as big as the effect
    single = paired_difference(a[1], base, articles)
    several = paired_difference(a, base, articles)
    assert several.rule == SIGN_FLIP_AND_T and several.p_value >= single.p_value
    assert several.high - several.low > single.high - single.low


def test_clopper_pearson_takes_fractional_effective_sizes():
    low, high = clopper_pearson(2.5, 10.0)
    assert 0 < low < 0.25 < high < 1
    assert clopper_pearson(0, 10)[0] == 0.0 and clopper_pearson(10, 10)[1] == 1.0


def test_benjamini_hochberg_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 0.01 x 3/1, 0.03 x 3/2, 0.04 x 3/3, then made monotone from the top
    assert adjust_p_values([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.04, 0.04])
    assert adjust_p_values([]) == []


def test_power_uses_t_on_the_articles_not_the_normal_quantile():
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    mde = minimum_detectable_effect(0.3, 10)
    assert mde > z * 0.3 / math.sqrt(10) * 1.1  # t(9) is wider than the normal by more than 10 %
    assert articles_needed(0.3, mde) == 10
    assert articles_needed(0.3, mde / 2) > 30
    assert articles_needed(0.0, 0.1) == 6  # an exact test needs 6 articles to reach p < 0.05 at all
