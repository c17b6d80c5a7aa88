"""The Pareto front of accuracy against cost: the points no other point beats, in cost order."""

import random
from itertools import pairwise

import pytest

from rag_pet.study.plots import pareto_front


@pytest.mark.parametrize(
    ("points", "front"),
    [
        ([], []),
        ([(5.0, 0.1)], [0]),
        # (2, 0.2) costs more than (1, 0.3) and scores less
        ([(0.0, 0.1), (1.0, 0.3), (2.0, 0.2), (3.0, 0.5)], [0, 1, 3]),
        # returned in cost order, not input order
        ([(3.0, 0.5), (0.0, 0.1), (1.0, 0.3)], [1, 2, 0]),
        # the same score for more cost is beaten
        ([(2.0, 0.3), (1.0, 0.3)], [1]),
        # the same cost for less score is beaten, whichever comes first
        ([(1.0, 0.2), (1.0, 0.3)], [1]),
        ([(1.0, 0.3), (1.0, 0.2)], [0]),
        # two methods with the same cost and score: neither beats the other
        ([(1.0, 0.3), (4.0, 0.6), (1.0, 0.3)], [0, 2, 1]),
        # methods that train nothing cost 0: the best of them beats a trained method that scores less
        ([(0.0, 0.05), (0.0, 0.08), (3e12, 0.07), (2e13, 0.18), (2.4e13, 0.13)], [1, 3]),
    ],
)
def test_pareto_front(points, front):
    assert pareto_front(points) == front


def test_the_front_is_not_a_running_maximum_over_cost_order():
    """Scanning in cost order and keeping each new best score keeps the first of two equal-cost points even when
    the second scores higher, and drops the second of two equal points."""
    points = [(1.0, 0.2), (1.0, 0.3), (2.0, 0.4), (2.0, 0.4)]
    assert pareto_front(points) == [1, 2, 3]


def test_the_front_on_random_points_with_ties():
    rng = random.Random(0)
    for _ in range(200):
        points = [(float(rng.randint(0, 5)), rng.randint(0, 5) / 10) for _ in range(rng.randint(1, 9))]
        front = pareto_front(points)
        on = [points[i] for i in front]
        assert len(set(front)) == len(front)
        # along the front cost rises and score rises with it (equal points aside)
        for (c1, s1), (c2, s2) in pairwise(on):
            assert (c1, s1) == (c2, s2) or (c1 < c2 and s1 < s2), points
        # every point left off is beaten by one on it: no cheaper-or-equal point scores as much, better in one
        for i, (cost, score) in enumerate(points):
            beaten = any(c <= cost and s >= score and (c, s) != (cost, score) for c, s in on)
            assert beaten == (i not in front), (points, i)
