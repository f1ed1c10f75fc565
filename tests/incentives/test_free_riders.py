"""Free-rider detection: each kind of untrained update is found, trained ones are not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedledger.incentives.free_riders import detect_free_riders, noise_bound

P = 4000  # parameters


def trained_round(k: int, seed: int = 0, sizes: list[int] | None = None) -> torch.Tensor:
    """``k`` updates that share the task's direction (a common gradient), each with its own
    data noise; a device with ``n`` samples takes ``n`` steps (its update grows with them)."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=P)
    sizes = sizes or [100] * k
    rows = []
    for n in sizes:
        own = rng.normal(size=P) * 2.0
        rows.append(n / 100 * (common + own))
    return torch.tensor(np.array(rows))


def test_zero_stale_copied_and_noise_updates_are_told_apart() -> None:
    x = trained_round(10)
    step = x.mean(dim=0) * 0.5  # the last global step
    x[1] = 0.0
    x[2] = step
    x[3] = x[7]  # copied: the copier and its source look alike
    x[4] = torch.randn(P, generator=torch.Generator().manual_seed(3), dtype=x.dtype) * 0.01
    assert detect_free_riders(x, step) == {
        1: "zero",
        2: "stale",
        3: "copied",
        4: "noise",
        7: "copied",
    }


def test_trained_updates_are_not_flagged_even_with_little_data() -> None:
    x = trained_round(12, sizes=[100] * 11 + [3])  # the last device holds 3 samples
    assert detect_free_riders(x, x.mean(dim=0)) == {}


def test_the_first_round_has_no_stale_test_and_tiny_noise_is_still_noise() -> None:
    x = trained_round(6) / 100  # updates of norm ~1.4
    x[0] = torch.randn(P, dtype=x.dtype) * 1e-3  # the attack's first-round σ (norm ~0.06)
    assert detect_free_riders(x, None) == {0: "noise"}


def test_edge_cases() -> None:
    assert detect_free_riders(torch.zeros(0, P)) == {}
    assert detect_free_riders(torch.zeros(3, P)) == {0: "zero", 1: "zero", 2: "zero"}
    one = trained_round(1)
    assert detect_free_riders(one) == {}  # nothing to compare a lone update with


def test_noise_bound_is_the_bonferroni_normal_quantile() -> None:
    # z for alpha = 1e-3 over one other row is the two-sided 99.9% quantile, 3.2905
    assert noise_bound(10_000, 1) == pytest.approx(3.2905 / 100, rel=1e-4)
    assert noise_bound(10_000, 10) > noise_bound(10_000, 1)
    assert noise_bound(0, 5) == 0.0


def test_random_directions_rarely_reach_the_bound() -> None:
    """Under the null hypothesis (independent random directions) a row escapes the ``noise``
    test only when some other row correlates with it beyond the bound: about ``alpha`` of the
    rows (fixed seeds: 300 rounds of 8)."""
    escaped = 0
    for seed in range(300):
        x = torch.tensor(np.random.default_rng(seed).normal(size=(8, 2000)))
        found = detect_free_riders(x)
        assert set(found.values()) <= {"noise"}
        escaped += 8 - len(found)
    assert escaped / 2400 < 0.01
