"""Defences (trimmed mean, Bulyan, norm clipping, FLTrust) against their papers' definitions."""

from __future__ import annotations

import math

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
    Bulyan,
    FedAvg,
    FLTrust,
    Krum,
    NormClipping,
    RoundContext,
    TrimmedMean,
    bulyan_sizes,
    clip_updates,
    create_strategy,
    trim_count,
    trimmed_mean,
    trust_scores,
)
from tests.strategies.rows import random_round


def _within(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> bool:
    """``lo ≤ x ≤ hi`` up to the rounding of a mean (which can step one ulp past its inputs)."""
    tol = 1e-12 * torch.maximum(lo.abs(), hi.abs()).clamp_min(1.0)
    return bool(((x >= lo - tol) & (x <= hi + tol)).all())


# ---------------------------------------------------------------------------------------------
# Trimmed mean (Yin et al., 2018)


def _np_trimmed_mean(x: np.ndarray, k: int) -> np.ndarray:
    """The definition: sort each column, drop k at each end, average what is left."""
    n = x.shape[0]
    return np.sort(x, axis=0)[k : n - k].mean(axis=0)


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 12),
    p=st.integers(1, 12),
    percent=st.integers(0, 49),
)
def test_trimmed_mean_is_numpys_sorted_and_trimmed_column_mean(
    data: st.DataObject, n: int, p: int, percent: int
) -> None:
    x = data.draw(
        arrays(np.float64, (n, p), elements=st.floats(-1e6, 1e6, allow_nan=False, width=64))
    )
    k = percent * n // 100  # ⌊percent/100 · n⌋ in exact integer arithmetic
    s = TrimmedMean(trim_fraction=percent / 100)
    got = s.aggregate(torch.zeros(p, dtype=torch.float64), torch.from_numpy(x), torch.ones(n))
    np.testing.assert_allclose(got.numpy(), _np_trimmed_mean(x, k), rtol=1e-12, atol=1e-9)
    assert s.flagged == ()


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 12),
    p=st.integers(1, 8),
    k=st.integers(0, 5),
)
def test_trimmed_mean_lies_between_the_kept_extremes(
    data: st.DataObject, n: int, p: int, k: int
) -> None:
    k = min(k, (n - 1) // 2)
    x = torch.from_numpy(
        data.draw(
            arrays(np.float64, (n, p), elements=st.floats(-1e9, 1e9, allow_nan=False, width=64))
        )
    )
    got = trimmed_mean(x, k)
    s = x.sort(dim=0).values
    # within [min, max], and even within the k-th smallest and k-th largest values
    assert _within(got, s[k], s[n - 1 - k])
    assert _within(got, x.min(dim=0).values, x.max(dim=0).values)


@settings(max_examples=100, deadline=None)
@given(
    f=st.integers(0, 4),
    extra=st.integers(1, 6),
    p=st.integers(1, 8),
    seed=st.integers(0, 10_000),
)
def test_trimmed_mean_stays_in_the_honest_range_with_f_huge_attackers(
    f: int, extra: int, p: int, seed: int
) -> None:
    n_honest = f + extra  # a strict honest majority, so f / n < 0.5
    n = n_honest + f
    w0, honest, _ = random_round(n_honest, p, seed)
    g = torch.Generator().manual_seed(seed + 1)
    signs = torch.randint(0, 2, (f, p), generator=g).to(torch.float64) * 2 - 1
    attack = signs * 1e12
    updates = torch.cat([attack, honest])
    assert trim_count(n, f / n) == f  # f / n · n may round to just under f
    counts = torch.cat([torch.full((f,), 1e9), torch.ones(n_honest)]).to(torch.float64)
    new = TrimmedMean(trim_fraction=f / n).aggregate(w0, updates, counts)
    assert _within(new - w0, honest.min(dim=0).values, honest.max(dim=0).values)


def test_trim_count_is_the_floor_without_losing_a_value_to_rounding() -> None:
    assert trim_count(10, 0.1) == 1
    assert trim_count(10, 0.25) == 2
    assert trim_count(9, 0.49) == 4
    assert trim_count(3, 0.3) == 0
    assert 0.29 * 100 < 29  # binary rounding …
    assert trim_count(100, 0.29) == 29  # … does not drop a value
    assert trim_count(1, 0.4) == 0
    assert trim_count(0, 0.1) == 0


def test_trimmed_mean_ignores_weights_and_scales_by_server_lr() -> None:
    w0, u, n = random_round(10, 5, 1)
    a = TrimmedMean(server_lr=0.5, trim_fraction=0.2).aggregate(w0, u, n)
    b = TrimmedMean(server_lr=0.5, trim_fraction=0.2).aggregate(w0, u, torch.ones(10) * 7)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, w0 + 0.5 * u.sort(dim=0).values[2:8].mean(dim=0))


def test_zero_trim_is_the_plain_mean() -> None:
    w0, u, n = random_round(6, 4, 2)
    torch.testing.assert_close(TrimmedMean(trim_fraction=0.0).aggregate(w0, u, n), w0 + u.mean(0))


def test_trimmed_mean_refuses_bad_parameters() -> None:
    for fraction in (-0.1, 0.5, 0.7, math.nan):
        with pytest.raises(FedledgerError, match="trim_fraction"):
            TrimmedMean(trim_fraction=fraction)
    with pytest.raises(FedledgerError, match="cannot drop"):
        trimmed_mean(torch.zeros(4, 2), 2)
    with pytest.raises(FedledgerError, match="cannot drop"):
        trimmed_mean(torch.zeros(4, 2), -1)


# ---------------------------------------------------------------------------------------------
# Bulyan (El Mhamdi et al., 2018)


def _loop_bulyan(updates: torch.Tensor, byzantine: int) -> tuple[list[int], list[float]]:
    """The paper's two phases taken literally, in plain Python: iterated Krum picks θ rows (the
    Krum score recomputed on the rows left, n' − f − 2 neighbours, at least one, ties to the
    lower index); then per coordinate the β selected values nearest the median (ties to the
    lower row index) are averaged. Returns the selected rows (in pick order) and the average."""
    rows = updates.tolist()
    n = len(rows)
    f = byzantine if byzantine > 0 else max((n - 3) // 4, 0)
    theta = max(n - 2 * f, 1)
    beta = max(theta - 2 * f, 1)
    remaining = list(range(n))
    chosen: list[int] = []
    for _ in range(theta):
        m = len(remaining)
        scores = []
        for i in remaining:
            d = sorted(
                sum((a - b) ** 2 for a, b in zip(rows[i], rows[j], strict=True))
                for j in remaining
                if j != i
            )
            scores.append((sum(d[: max(m - f - 2, 1)]), i))
        best = min(scores)[1]
        chosen.append(best)
        remaining.remove(best)
    sel = sorted(chosen)
    out = []
    for c in range(len(rows[0])):
        col = [rows[i][c] for i in sel]
        med = float(np.median(col))
        near = sorted(range(len(col)), key=lambda j: (abs(col[j] - med), j))[:beta]
        out.append(sum(col[j] for j in near) / beta)
    return chosen, out


def test_bulyan_sizes_follow_the_paper_and_floor_at_one() -> None:
    assert bulyan_sizes(11, 2) == (2, 7, 3)  # θ = n − 2f, β = θ − 2f
    assert bulyan_sizes(11, 0) == (2, 7, 3)  # f = (11 − 3) // 4
    assert bulyan_sizes(7, 0) == (1, 5, 3)
    assert bulyan_sizes(6, 0) == (0, 6, 6)  # n < 7: f = 0, plain mean
    assert bulyan_sizes(1, 0) == (0, 1, 1)
    assert bulyan_sizes(6, 2) == (2, 2, 1)  # f too large: β floored
    assert bulyan_sizes(5, 2) == (2, 1, 1)  # θ floored: Krum
    assert bulyan_sizes(2, 3) == (3, 1, 1)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 12),
    p=st.integers(1, 6),
    f=st.integers(0, 4),
    seed=st.integers(0, 10_000),
)
def test_bulyan_matches_the_papers_two_phases_computed_in_a_loop(
    n: int, p: int, f: int, seed: int
) -> None:
    w0, u, weights = random_round(n, p, seed)
    chosen, expected = _loop_bulyan(u, f)
    b = Bulyan(server_lr=0.5, byzantine=f)
    assert sorted(b.selected(u)) == sorted(chosen)
    got = b.aggregate(w0, u, weights)
    torch.testing.assert_close(got, w0 + 0.5 * torch.tensor(expected, dtype=torch.float64))
    assert b.flagged == tuple(i for i in range(n) if i not in chosen)


def test_bulyan_averages_the_values_nearest_the_median_not_the_middle_ones() -> None:
    # n = 7, f = 1: θ = 5, β = 3. Iterated Krum (4, 3, 2, 1, 1 neighbours) picks the rows 3, 5,
    # 1, then 7 over 12 (a tie at one neighbour, to the lower index) and 0; 12 and the
    # attacker are left out. Median of {0, 1, 2, 5, 7} is 2, and the three values nearest it
    # are 2, 1, 0 → 1.0, where a trimmed mean of the same five would give (1 + 2 + 5) / 3.
    u = torch.tensor([[0.0], [1.0], [2.0], [5.0], [7.0], [12.0], [1000.0]], dtype=torch.float64)
    b = Bulyan(byzantine=1)
    assert b.selected(u) == [2, 3, 1, 4, 0]
    got = b.aggregate(torch.zeros(1, dtype=torch.float64), u, torch.ones(7))
    torch.testing.assert_close(got, torch.tensor([1.0], dtype=torch.float64))
    assert b.flagged == (5, 6)


@settings(max_examples=60, deadline=None)
@given(
    f=st.integers(1, 3),
    extra=st.integers(0, 3),
    p=st.integers(1, 6),
    same=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_bulyan_stays_in_the_honest_range_with_f_huge_attackers(
    f: int, extra: int, p: int, same: bool, seed: int
) -> None:
    n_honest = 3 * f + 3 + extra  # n ≥ 4f + 3
    w0, honest, _ = random_round(n_honest, p, seed)
    g = torch.Generator().manual_seed(seed + 1)
    if same:  # colluding attackers that send one vector
        attack = (1e9 * torch.randn(1, p, generator=g, dtype=torch.float64)).repeat(f, 1)
    else:
        signs = torch.randint(0, 2, (f, p), generator=g).to(torch.float64) * 2 - 1
        attack = signs * (1e9 + torch.rand(f, p, generator=g, dtype=torch.float64))
    updates = torch.cat([attack, honest])  # attackers first, so a tie could not hide them
    counts = torch.cat([torch.full((f,), 1e9), torch.ones(n_honest)]).to(torch.float64)
    b = Bulyan(byzantine=f)
    new = b.aggregate(w0, updates, counts)
    assert _within(new - w0, honest.min(dim=0).values, honest.max(dim=0).values)
    assert len(b.flagged) == 2 * f


def test_bulyan_without_attackers_for_the_round_size_is_the_unweighted_mean() -> None:
    w0, u, n = random_round(6, 5, 8)  # 6 < 4·1 + 3, so f = 0
    b = Bulyan()
    torch.testing.assert_close(b.aggregate(w0, u, n), w0 + u.mean(dim=0))
    assert b.flagged == ()


def test_bulyan_with_too_large_f_degrades_to_krum_then_to_the_value_nearest_the_median() -> None:
    w0, u, n = random_round(5, 4, 9)
    b = Bulyan(byzantine=2)  # θ = 1: Krum's choice
    k = Krum(byzantine=2)
    torch.testing.assert_close(b.aggregate(w0, u, n), k.aggregate(w0, u, n))
    assert b.flagged == k.flagged
    assert len(b.flagged) == 4
    _, u, n = random_round(6, 4, 10)  # θ = 2, β = 1: per coordinate one of the two selected values
    b = Bulyan(byzantine=2)
    got = b.aggregate(torch.zeros(4, dtype=torch.float64), u, n)
    sel = [i for i in range(6) if i not in b.flagged]
    assert len(sel) == 2
    assert bool(((got == u[sel[0]]) | (got == u[sel[1]])).all())
    torch.testing.assert_close(got, torch.tensor(_loop_bulyan(u, 2)[1], dtype=torch.float64))
    one = torch.tensor([[3.0, -1.0]])
    torch.testing.assert_close(Bulyan(byzantine=3).aggregate(torch.zeros(2), one, n[:1]), one[0])


def test_bulyan_resets_flagged_and_refuses_negative_f() -> None:
    w0, honest, _ = random_round(7, 3, 12)
    b = Bulyan()
    b.aggregate(w0, torch.cat([honest[:6], torch.full((1, 3), 1e6)]), torch.ones(7))
    assert 6 in b.flagged  # n = 7: f = 1, two rows left out
    b.aggregate(w0, honest[:5], torch.ones(5))
    assert b.flagged == ()  # n = 5: f = 0, every row kept
    with pytest.raises(FedledgerError, match="byzantine"):
        Bulyan(byzantine=-1)


# ---------------------------------------------------------------------------------------------
# Norm clipping (Sun et al., 2019)


def _np_clipping(
    updates: np.ndarray, weights: np.ndarray, clip_norm: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Rows scaled by min(1, M/‖Δ‖) in a loop, M = clip_norm or the median norm; then the
    sample-weighted mean. Returns the clipped rows, the mean and M."""
    norms = [float(np.linalg.norm(r)) for r in updates]
    m = clip_norm if clip_norm > 0 else float(np.median(norms))
    clipped = np.stack(
        [r * min(1.0, m / nr) if nr > 0 else r for r, nr in zip(updates, norms, strict=True)]
    )
    mean = (weights[:, None] * clipped).sum(axis=0) / weights.sum()
    return clipped, mean, m


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 10),
    p=st.integers(1, 12),
    clip=st.sampled_from([0.0, 0.5, 2.0, 4.0]),
    scale=st.sampled_from([1.0, 1e3]),
    seed=st.integers(0, 10_000),
)
def test_clipping_matches_the_reference_and_bounds_every_norm(
    n: int, p: int, clip: float, scale: float, seed: int
) -> None:
    w0, u, weights = random_round(n, p, seed)
    u = u * torch.linspace(0.1, scale, n, dtype=torch.float64)[:, None]
    s = NormClipping(server_lr=0.5, clip_norm=clip)
    m = s.bound(u)
    ref_rows, ref_mean, ref_m = _np_clipping(u.numpy(), weights.numpy(), clip)
    assert m == pytest.approx(ref_m, rel=1e-14)
    rows = clip_updates(u, m)
    norms = torch.linalg.vector_norm(rows, dim=1)
    assert bool((norms <= m * (1 + 1e-12)).all())
    inside = torch.linalg.vector_norm(u, dim=1) <= m
    assert torch.equal(rows[inside], u[inside])  # rows within the bound are untouched
    np.testing.assert_allclose(rows.numpy(), ref_rows, rtol=1e-13, atol=1e-15)
    got = s.aggregate(w0, u, weights)
    np.testing.assert_allclose(got.numpy(), (w0 + 0.5 * torch.from_numpy(ref_mean)).numpy())
    assert s.flagged == ()


def test_clipping_to_the_median_norm_by_hand() -> None:
    u = torch.tensor([[1.0, 0.0], [0.0, 2.0], [6.0, 8.0]])  # norms 1, 2, 10 → M = 2
    w = torch.tensor([1.0, 1.0, 2.0])
    got = NormClipping().aggregate(torch.zeros(2), u, w)
    # the boosted row becomes [1.2, 1.6]; (1·[1, 0] + 1·[0, 2] + 2·[1.2, 1.6]) / 4
    torch.testing.assert_close(got, torch.tensor([3.4, 5.2]) / 4)
    even = torch.tensor([[1.0, 0.0], [0.0, 2.0], [6.0, 8.0], [0.0, 20.0]])  # M = (2 + 10) / 2
    assert NormClipping().bound(even) == 6.0


def test_clipping_with_a_loose_bound_is_exactly_fedavg() -> None:
    w0, u, n = random_round(7, 9, 5)
    got = NormClipping(server_lr=0.3, clip_norm=1e9).aggregate(w0, u, n)
    assert torch.equal(got, FedAvg(server_lr=0.3).aggregate(w0, u, n))


def test_clipping_scales_a_float32_row_too_large_to_square_instead_of_zeroing_it() -> None:
    u = torch.tensor([[3.0, 4.0], [3e30, 4e30]], dtype=torch.float32)
    rows = clip_updates(u, 5.0)
    torch.testing.assert_close(rows, torch.tensor([[3.0, 4.0], [3.0, 4.0]]))


def test_clipping_uses_the_sample_counts_and_refuses_bad_bounds() -> None:
    w0, u, _ = random_round(4, 3, 6)
    a = NormClipping(clip_norm=0.5).aggregate(w0, u, torch.tensor([1.0, 1.0, 1.0, 1.0]))
    b = NormClipping(clip_norm=0.5).aggregate(w0, u, torch.tensor([1.0, 1.0, 1.0, 50.0]))
    assert not torch.allclose(a, b)
    with pytest.raises(FedledgerError, match="clip_norm"):
        NormClipping(clip_norm=-1.0)
    with pytest.raises(FedledgerError, match="norm bound"):
        clip_updates(u, -1.0)


# ---------------------------------------------------------------------------------------------
# FLTrust (Cao et al., 2021)


def _np_fltrust(
    w0: np.ndarray, updates: np.ndarray, g0: np.ndarray, lr: float
) -> tuple[np.ndarray, list[int]]:
    """TS_i = max(cos, 0), Δ̂_i = Δ_i ‖g0‖/‖Δ_i‖, g = Σ TS_i Δ̂_i / Σ TS_i, row by row."""
    ref = float(np.linalg.norm(g0))
    num = np.zeros_like(g0)
    total = 0.0
    flagged = []
    for i, row in enumerate(updates):
        nr = float(np.linalg.norm(row))
        ts = max(float(row @ g0) / (nr * ref), 0.0) if nr > 0 and ref > 0 else 0.0
        if ts == 0:
            flagged.append(i)
            continue
        num += ts * row * (ref / nr)
        total += ts
    if total == 0:
        return w0.copy(), flagged
    return w0 + lr * num / total, flagged


def _ctx(reference: torch.Tensor) -> RoundContext:
    return RoundContext(round=1, reference=reference)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 10),
    p=st.integers(1, 12),
    lr=st.sampled_from([1.0, 0.5]),
    seed=st.integers(0, 10_000),
)
def test_fltrust_matches_the_reference_loop(n: int, p: int, lr: float, seed: int) -> None:
    w0, u, weights = random_round(n, p, seed)
    g0 = torch.randn(p, generator=torch.Generator().manual_seed(seed + 7), dtype=torch.float64)
    u = u * torch.linspace(0.01, 100.0, n, dtype=torch.float64)[:, None]
    expected, flagged = _np_fltrust(w0.numpy(), u.numpy(), g0.numpy(), lr)
    s = FLTrust(server_lr=lr)
    got = s.aggregate(w0, u, weights, _ctx(g0))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert s.flagged == tuple(flagged)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 8),
    p=st.integers(2, 10),
    boost=st.floats(1e-3, 1e6),
    seed=st.integers(0, 10_000),
)
def test_fltrust_scale_normalisation_makes_boosting_useless(
    n: int, p: int, boost: float, seed: int
) -> None:
    w0, u, weights = random_round(n, p, seed)
    g0 = u.mean(dim=0) + 0.1 * torch.randn(p, dtype=torch.float64)
    s = FLTrust()
    base = s.aggregate(w0, u, weights, _ctx(g0))
    boosted = u.clone()
    boosted[0] *= boost
    torch.testing.assert_close(s.aggregate(w0, boosted, weights, _ctx(g0)), base)
    # a trust-weighted average of vectors of norm ‖g0‖ is no longer than g0
    assert float(torch.linalg.vector_norm(base - w0)) <= float(torch.linalg.vector_norm(g0)) * (
        1 + 1e-12
    )


def test_fltrust_flags_and_ignores_rows_pointing_away_from_the_reference() -> None:
    w0, honest, weights = random_round(5, 6, 13)
    g0 = honest.mean(dim=0)
    honest = g0 + 0.1 * honest  # all within a small angle of g0
    attack = torch.stack([-50 * g0, -g0 + 1e-3 * honest[0]])
    s = FLTrust(server_lr=0.7)
    got = s.aggregate(w0, torch.cat([honest[:2], attack, honest[2:]]), torch.ones(7), _ctx(g0))
    assert s.flagged == (2, 3)
    torch.testing.assert_close(got, s.aggregate(w0, honest, weights, _ctx(g0)))
    assert s.flagged == ()  # reset on every call
    assert bool((trust_scores(attack, g0) == 0).all())


def test_fltrust_one_aligned_row_is_rescaled_to_the_reference() -> None:
    g0 = torch.tensor([3.0, 4.0])
    u = torch.tensor([[300.0, 400.0]])
    torch.testing.assert_close(
        FLTrust().aggregate(torch.ones(2), u, torch.ones(1), _ctx(g0)), 1 + g0
    )


def test_fltrust_with_no_trusted_row_keeps_the_global_model() -> None:
    w0 = torch.tensor([1.0, 2.0, 3.0])
    g0 = torch.tensor([1.0, 0.0, 0.0])
    u = torch.tensor([[-1.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 0.0]])
    s = FLTrust()
    got = s.aggregate(w0, u, torch.ones(3), _ctx(g0))
    assert torch.equal(got, w0)
    assert got is not w0
    assert s.flagged == (0, 1, 2)  # negative, orthogonal and zero rows all have trust 0
    got = s.aggregate(w0, u[:2], torch.ones(2), _ctx(torch.zeros(3)))
    assert torch.equal(got, w0)  # a zero reference trusts nobody


def test_fltrust_survives_non_finite_rows_and_keeps_the_dtype() -> None:
    w0 = torch.zeros(3, dtype=torch.float32)
    g0 = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float32)
    u = torch.tensor(
        [[1.0, 1.0, 0.0], [math.nan, 1.0, 0.0], [math.inf, 0.0, 0.0], [1e30, 1e30, 0.0]],
        dtype=torch.float32,
    )
    s = FLTrust()
    got = s.aggregate(w0, u, torch.ones(4), _ctx(g0))
    assert got.dtype == torch.float32
    assert s.flagged == (1, 2)
    # the 1e30 row overflows a float32 dot product, not a float64 one: it is trusted and rescaled
    torch.testing.assert_close(got, g0)


def test_fltrust_needs_a_reference_of_the_right_shape() -> None:
    w0, u, n = random_round(3, 4, 14)
    s = FLTrust()
    for ctx in (None, RoundContext(round=2)):
        with pytest.raises(FedledgerError, match="reference update"):
            s.aggregate(w0, u, n, ctx)
    with pytest.raises(FedledgerError, match="shape"):
        s.aggregate(w0, u, n, _ctx(torch.zeros(5, dtype=torch.float64)))


def test_fltrust_ignores_the_sample_counts() -> None:
    w0, u, n = random_round(6, 4, 15)
    g0 = u.mean(dim=0)
    a = FLTrust().aggregate(w0, u, n, _ctx(g0))
    b = FLTrust().aggregate(w0, u, torch.ones(6), _ctx(g0))
    torch.testing.assert_close(a, b)


# ---------------------------------------------------------------------------------------------
# All four


def test_defences_refuse_an_empty_round_and_keep_no_state() -> None:
    empty = torch.zeros(0, 3)
    for s in (TrimmedMean(), Bulyan(), NormClipping(), NormClipping(clip_norm=1.0), FLTrust()):
        with pytest.raises(FedledgerError, match="no updates"):
            s.aggregate(torch.zeros(3), empty, torch.zeros(0), _ctx(torch.ones(3)))
        assert s.state_dict() == {}


def test_registry_builds_the_defences_from_config() -> None:
    t = create_strategy(StrategyConfig(name="trimmed_mean", server_lr=0.5, trim_fraction=0.2))
    assert isinstance(t, TrimmedMean)
    assert (t.server_lr, t.trim_fraction) == (0.5, 0.2)
    b = create_strategy(StrategyConfig(name="bulyan", byzantine=2))
    assert isinstance(b, Bulyan)
    assert (b.server_lr, b.byzantine) == (1.0, 2)
    c = create_strategy(StrategyConfig(name="clipping", clip_norm=3.0))
    assert isinstance(c, NormClipping)
    assert (c.server_lr, c.clip_norm) == (1.0, 3.0)
    assert create_strategy(StrategyConfig(name="clipping")).clip_norm == 0.0  # type: ignore[attr-defined]
    f = create_strategy(StrategyConfig(name="fltrust", server_lr=2.0))
    assert isinstance(f, FLTrust)
    assert f.server_lr == 2.0
    assert {"trimmed_mean", "bulyan", "clipping", "fltrust"} <= set(STRATEGIES)
    flags = {
        name: (cls.screens, cls.needs_reference, cls.averaging)
        for name, cls in STRATEGIES.items()
        if name in ("trimmed_mean", "bulyan", "clipping", "fltrust")
    }
    assert flags == {
        "trimmed_mean": (False, False, False),
        "bulyan": (True, False, False),
        "clipping": (False, False, False),
        "fltrust": (True, True, False),
    }
