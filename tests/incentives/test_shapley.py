"""Exact and GTG-Shapley values against the definition and known games."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.incentives import CoalitionValue, GtgSettings, exact_shapley, gtg_shapley


def by_permutations(n: int, v: CoalitionValue) -> np.ndarray:
    """The Shapley value as the average marginal over all n! join orders."""
    phi = np.zeros(n)
    for order in itertools.permutations(range(n)):
        prefix: frozenset[int] = frozenset()
        for i in order:
            phi[i] += v(prefix | {i}) - v(prefix)
            prefix = prefix | {i}
    return phi / math.factorial(n)


def table_game(n: int, values: list[float]) -> CoalitionValue:
    """A game given by one value per coalition (bitmask order)."""
    return CoalitionValue(lambda s: values[sum(1 << i for i in s)])


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 5).flatmap(
        lambda n: st.tuples(
            st.just(n), st.lists(st.floats(-10, 10), min_size=1 << n, max_size=1 << n)
        )
    )
)
def test_exact_shapley_is_the_average_marginal_over_every_order(
    game: tuple[int, list[float]],
) -> None:
    n, values = game
    phi = exact_shapley(n, table_game(n, values))
    assert np.allclose(phi, by_permutations(n, table_game(n, values)), atol=1e-9)
    # efficiency: the values split v(N) − v(∅)
    assert phi.sum() == pytest.approx(values[-1] - values[0], abs=1e-9)


def test_exact_shapley_on_known_games() -> None:
    # additive: each player is worth its own weight
    a = [1.0, 2.0, -0.5]
    phi = exact_shapley(3, CoalitionValue(lambda s: sum(a[i] for i in s)))
    assert np.allclose(phi, a)
    # glove game: player 0 holds a left glove, players 1 and 2 right gloves; a pair is worth 1
    glove = CoalitionValue(lambda s: float(0 in s and bool(s & {1, 2})))
    assert np.allclose(exact_shapley(3, glove), [2 / 3, 1 / 6, 1 / 6])
    # a null player gets 0, symmetric players the same
    null = CoalitionValue(lambda s: float(len(s - {3}) >= 2))
    phi = exact_shapley(4, null)
    assert phi[3] == 0 and np.allclose(phi[:3], 1 / 3)
    v = CoalitionValue(lambda s: float(len(s)))
    exact_shapley(4, v)
    assert v.evaluations == 16  # every coalition once, cached


def test_exact_shapley_refuses_more_than_its_limit() -> None:
    with pytest.raises(ValueError, match="at most 16"):
        exact_shapley(17, CoalitionValue(lambda s: 0.0))


def test_gtg_is_exact_on_an_additive_game() -> None:
    a = [0.5, 1.5, -1.0, 3.0, 0.25, 2.0]
    phi = gtg_shapley(6, CoalitionValue(lambda s: sum(a[i] for i in s)), np.random.default_rng(0))
    assert np.allclose(phi, a)


def test_gtg_skips_a_round_that_changed_nothing() -> None:
    v = CoalitionValue(lambda s: 1.0 if len(s) in (0, 6) else float(len(s)))
    phi = gtg_shapley(6, v, np.random.default_rng(0))
    assert np.array_equal(phi, np.zeros(6))
    assert v.evaluations == 2  # v(∅) and v(N), nothing else


def test_gtg_is_exact_when_its_budget_covers_every_coalition() -> None:
    values = list(np.random.default_rng(1).normal(0, 1, 1 << 4))
    cfg = GtgSettings(evaluations_per_device=4.0)  # 16 evaluations = 2^4
    phi = gtg_shapley(4, table_game(4, values), np.random.default_rng(0), cfg)
    assert np.allclose(phi, exact_shapley(4, table_game(4, values)))


@settings(max_examples=25, deadline=None)
@given(st.integers(5, 10), st.floats(2.5, 8.0), st.integers(0, 2**31 - 1))
def test_gtg_never_exceeds_its_budget_and_computes_the_end_strata_exactly(
    n: int, per_device: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 1, n)

    def value(s: frozenset[int]) -> float:
        return float(np.tanh(sum(weights[i] for i in s)))  # not additive, not monotone

    v = CoalitionValue(value)
    cfg = GtgSettings(evaluations_per_device=per_device)
    gtg_shapley(n, v, np.random.default_rng(seed), cfg)
    assert v.evaluations <= max(2 * n + 2, math.ceil(per_device * n))
    everyone = frozenset(range(n))
    for i in range(n):  # singletons and leave-one-out coalitions were all evaluated
        assert frozenset({i}) in v.cache and everyone - {i} in v.cache


def test_gtg_leads_with_every_device_in_turn() -> None:
    """Guided sampling: walk k starts from device k mod n, so the k-th size-2 coalition asked
    for (cached or not) contains device k mod n."""
    asked: list[frozenset[int]] = []

    class Logged(CoalitionValue):
        def __call__(self, coalition: frozenset[int]) -> float:
            if len(coalition) == 2:
                asked.append(coalition)
            return super().__call__(coalition)

    gtg_shapley(7, Logged(lambda s: float(len(s) ** 0.5)), np.random.default_rng(5))
    assert len(asked) >= 7
    for k, pair in enumerate(asked):
        assert k % 7 in pair


def test_gtg_estimates_converge_on_the_exact_values() -> None:
    """On smooth 9-player games (how close the coalition's mean lands to a target), fixed seeds
    so the Monte-Carlo test cannot flake: a generous budget lands within 10% of the exact
    values on average, and always closer than the default budget does."""
    for seed in range(30):
        rng = np.random.default_rng(seed)
        points = rng.normal(0, 1, (9, 3)) * rng.uniform(0.2, 3, (9, 1))

        def value(s: frozenset[int], points: np.ndarray = points) -> float:
            centre = points[sorted(s)].mean(axis=0) if s else np.full(3, 5.0)
            return -float(np.sum(centre**2))

        exact = exact_shapley(9, CoalitionValue(value))
        errors = []
        for per_device in (6.0, 40.0):
            cfg = GtgSettings(evaluations_per_device=per_device)
            est = gtg_shapley(9, CoalitionValue(value), np.random.default_rng(seed), cfg)
            errors.append(np.abs(est - exact).mean() / np.abs(exact).mean())
        assert errors[1] <= 0.1, seed
        assert errors[1] < errors[0], seed
