"""Robust strategies (coordinate-wise median, Krum, Multi-Krum) against their papers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fedledger.config import StrategyConfig
from fedledger.errors import FedledgerError
from fedledger.strategies import (
    STRATEGIES,
    Krum,
    Median,
    coordinate_median,
    create_strategy,
    krum_neighbours,
)
from tests.strategies.rows import random_round


def _loop_krum_scores(updates: torch.Tensor, f: int) -> list[float]:
    """Blanchard et al. 2017, taken literally: for each i, the squared distances to every other
    row, sorted, and the n − f − 2 smallest summed (at least one neighbour)."""
    rows = updates.tolist()
    n = len(rows)
    scores = []
    for i in range(n):
        d = sorted(
            sum((a - b) ** 2 for a, b in zip(rows[i], rows[j], strict=True))
            for j in range(n)
            if j != i
        )
        scores.append(float(sum(d[: max(n - f - 2, 1)])))
    return scores


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    k=st.integers(1, 9),
    p=st.integers(1, 20),
)
def test_median_is_numpys_median_per_coordinate(data: st.DataObject, k: int, p: int) -> None:
    x = data.draw(
        arrays(np.float64, (k, p), elements=st.floats(-1e6, 1e6, allow_nan=False, width=64))
    )
    w0 = np.zeros(p)
    got = Median().aggregate(torch.from_numpy(w0), torch.from_numpy(x), torch.ones(k))
    np.testing.assert_array_equal(got.numpy(), np.median(x, axis=0))


def test_even_median_is_the_mean_of_the_middle_values_not_the_lower_one() -> None:
    x = torch.tensor([[1.0, -4.0], [2.0, 0.0], [10.0, 3.0], [4.0, 8.0]])
    torch.testing.assert_close(coordinate_median(x), torch.tensor([3.0, 1.5]))


def test_median_ignores_one_huge_outlier_and_the_sample_counts() -> None:
    w0, honest, _ = random_round(4, 6, 7)
    attack = torch.full((1, 6), 1e12, dtype=torch.float64)
    updates = torch.cat([honest, attack])
    counts = torch.tensor([10.0, 10.0, 10.0, 10.0, 1e9], dtype=torch.float64)
    new = Median().aggregate(w0, updates, counts)
    lo, hi = honest.min(dim=0).values, honest.max(dim=0).values
    assert bool(((new - w0 >= lo) & (new - w0 <= hi)).all())
    # with five rows the outlier sits at the top, so the median is the third honest value
    torch.testing.assert_close(new, w0 + honest.sort(dim=0).values[2])


def test_median_server_lr_scales_the_step() -> None:
    w0, u, n = random_round(5, 4, 3)
    torch.testing.assert_close(
        Median(server_lr=0.25).aggregate(w0, u, n), w0 + 0.25 * u.median(dim=0).values
    )


@pytest.mark.parametrize(("n", "f"), [(7, 2), (10, 3), (11, 4), (5, 0)])
def test_krum_picks_an_honest_row_when_attackers_are_far_away(n: int, f: int) -> None:
    w0, honest, _ = random_round(n - f, 8, n)
    g = torch.Generator().manual_seed(99)
    attackers = 1e3 + 50 * torch.randn(f, 8, generator=g, dtype=torch.float64)
    updates = torch.cat([attackers, honest])  # attackers first, so a tie could not hide them
    k = Krum(byzantine=f)
    chosen = int(k.selected(updates)[0])
    assert chosen >= f
    torch.testing.assert_close(k.aggregate(w0, updates, torch.ones(n)), w0 + updates[chosen])


def test_krum_ignores_sample_counts() -> None:
    w0, u, _ = random_round(7, 5, 4)
    a = Krum(byzantine=2).aggregate(w0, u, torch.ones(7))
    b = Krum(byzantine=2).aggregate(w0, u, torch.arange(1.0, 8.0) ** 6)
    torch.testing.assert_close(a, b)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 12),
    p=st.integers(1, 10),
    f=st.integers(0, 6),
    seed=st.integers(0, 10_000),
)
def test_krum_choice_matches_the_papers_score_computed_in_a_loop(
    n: int, p: int, f: int, seed: int
) -> None:
    w0, u, weights = random_round(n, p, seed)
    # f = 0 in the config means "as many as Krum tolerates"; the loop takes f literally
    f_eff = f if f > 0 else max((n - 3) // 2, 0)
    scores = _loop_krum_scores(u, f_eff) if n > 1 else [0.0]
    expected = min(range(n), key=lambda i: (scores[i], i))
    k = Krum(server_lr=0.5, byzantine=f)
    assert int(k.selected(u)[0]) == expected
    torch.testing.assert_close(k.aggregate(w0, u, weights), w0 + 0.5 * u[expected])


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 10), seed=st.integers(0, 10_000))
def test_multi_krum_of_all_rows_is_the_unweighted_mean(n: int, seed: int) -> None:
    w0, u, weights = random_round(n, 6, seed)
    got = Krum(byzantine=1, select=n).aggregate(w0, u, weights)
    torch.testing.assert_close(got, w0 + u.mean(dim=0))
    # asking for more rows than there are averages them all too
    torch.testing.assert_close(Krum(select=n + 3).aggregate(w0, u, weights), got)


def test_multi_krum_averages_the_m_bestrandom_round() -> None:
    w0, u, n = random_round(9, 4, 11)
    f = 2
    scores = _loop_krum_scores(u, f)
    best = sorted(range(9), key=lambda i: (scores[i], i))[:3]
    got = Krum(byzantine=f, select=3).aggregate(w0, u, n)
    torch.testing.assert_close(got, w0 + u[best].mean(dim=0))


def test_krum_neighbour_count_follows_the_paper_with_a_floor_of_one() -> None:
    assert krum_neighbours(10, 3) == 5  # n − f − 2
    assert krum_neighbours(10, 0) == 5  # f = (10 − 3) // 2 = 3
    assert krum_neighbours(4, 5) == 1  # n − f − 2 < 1
    assert krum_neighbours(2, 0) == 1
    assert krum_neighbours(1, 0) == 0


def test_krum_ties_go_to_the_lowest_index() -> None:
    # f = 1, n = 5 → 2 neighbours: rows 1-4 all score 1, row 0 scores 32
    u = torch.tensor([[5.0], [1.0], [0.0], [1.0], [0.0]], dtype=torch.float64)
    assert Krum(byzantine=1).selected(u).tolist() == [1]
    assert Krum(byzantine=1, select=5).selected(u).tolist() == [1, 2, 3, 4, 0]


def test_krum_is_stable_for_close_rows_far_from_the_origin() -> None:
    base = torch.full((1, 50), 1e6, dtype=torch.float32)
    u = base.repeat(6, 1)
    u[:, 0] += torch.tensor([0.0, 0.5, 0.25, 4.0, 0.375, 8.0])
    # rows 0, 1, 2, 4 are within 0.5 of each other; f = 1 → 3 neighbours
    assert int(Krum(byzantine=1).selected(u)[0]) == 2


def test_robust_strategies_refuse_an_empty_round() -> None:
    empty = torch.zeros(0, 3)
    for s in (Median(), Krum()):
        with pytest.raises(FedledgerError, match="no updates"):
            s.aggregate(torch.zeros(3), empty, torch.zeros(0))


def test_registry_builds_the_robust_strategies_from_config() -> None:
    m = create_strategy(StrategyConfig(name="median"))
    assert isinstance(m, Median)
    assert m.server_lr == 1.0
    k = create_strategy(StrategyConfig(name="krum", server_lr=0.5, byzantine=2, krum_select=3))
    assert isinstance(k, Krum)
    assert (k.server_lr, k.byzantine, k.select) == (0.5, 2, 3)
    default = create_strategy(StrategyConfig(name="krum"))
    assert isinstance(default, Krum)
    assert (default.server_lr, default.byzantine, default.select) == (1.0, 0, 1)
    assert {"median", "krum"} <= set(STRATEGIES)


def test_config_rejects_negative_byzantine_and_zero_select() -> None:
    with pytest.raises(ValueError, match="byzantine"):
        StrategyConfig(name="krum", byzantine=-1)
    with pytest.raises(ValueError, match="krum_select"):
        StrategyConfig(name="krum", krum_select=0)


def test_averaging_is_true_exactly_for_the_mean_based_strategies() -> None:
    assert {n for n, cls in STRATEGIES.items() if cls.averaging} == {
        "fedavg",
        "fedavgm",
        "fedadam",
    }
