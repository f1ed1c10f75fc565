"""Strategies against their papers' update rules."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.config import StrategyConfig
from fedledger.errors import FedledgerError, RegistryError
from fedledger.strategies import (
    STRATEGIES,
    FedAdam,
    FedAvg,
    FedAvgM,
    create_strategy,
    proximal_gradient,
    proximal_term,
)


def _problem(k: int, p: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(p, generator=g, dtype=torch.float64),
        torch.randn(k, p, generator=g, dtype=torch.float64),
        torch.randint(1, 100, (k,), generator=g).to(torch.float64),
    )


@settings(max_examples=50, deadline=None)
@given(k=st.integers(1, 12), p=st.integers(1, 40), seed=st.integers(0, 10_000))
def test_fedavg_is_the_sample_weighted_mean(k: int, p: int, seed: int) -> None:
    w0, updates, n = _problem(k, p, seed)
    expected = w0 + sum(n[i] * updates[i] for i in range(k)) / n.sum()
    torch.testing.assert_close(FedAvg().aggregate(w0, updates, n), expected)


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_fedavg_of_identical_updates_is_that_update(k: int, seed: int) -> None:
    w0, updates, n = _problem(1, 7, seed)
    same = updates.repeat(k, 1)
    torch.testing.assert_close(FedAvg().aggregate(w0, same, n.repeat(k)), w0 + updates[0])


def test_fedavgm_accumulates_momentum() -> None:
    w0, u1, n = _problem(3, 5, 1)
    _, u2, _ = _problem(3, 5, 2)
    s = FedAvgM(server_lr=0.5, momentum=0.9)
    d1 = (n @ u1) / n.sum()
    d2 = (n @ u2) / n.sum()
    w1 = s.aggregate(w0, u1, n)
    torch.testing.assert_close(w1, w0 + 0.5 * d1)
    w2 = s.aggregate(w1, u2, n)
    torch.testing.assert_close(w2, w1 + 0.5 * (0.9 * d1 + d2))


def test_fedadam_follows_reddi_et_al_algorithm_2() -> None:
    w, _, n = _problem(4, 6, 3)
    s = FedAdam(server_lr=0.1, beta1=0.9, beta2=0.99, tau=1e-3)
    m = torch.zeros(6, dtype=torch.float64)
    v = torch.full((6,), 1e-6, dtype=torch.float64)
    expected = w.clone()
    for r in range(3):
        _, u, _ = _problem(4, 6, 10 + r)
        delta = (n @ u) / n.sum()
        m = 0.9 * m + 0.1 * delta
        v = 0.99 * v + 0.01 * delta**2
        expected = expected + 0.1 * m / (v.sqrt() + 1e-3)
        w = s.aggregate(w, u, n)
        torch.testing.assert_close(w, expected)


def test_server_state_survives_a_checkpoint() -> None:
    w0, u, n = _problem(3, 4, 5)
    a = FedAdam()
    w1 = a.aggregate(w0, u, n)
    b = FedAdam()
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a.aggregate(w1, u, n), b.aggregate(w1, u, n))


@settings(max_examples=50, deadline=None)
@given(p=st.integers(1, 30), mu=st.floats(0, 10), seed=st.integers(0, 10_000))
def test_proximal_gradient_is_the_gradient_of_the_proximal_term(
    p: int, mu: float, seed: int
) -> None:
    w0, w, _ = _problem(1, p, seed)
    w = w[0].clone().requires_grad_()
    (auto,) = torch.autograd.grad(proximal_term(w, w0, mu), w)
    torch.testing.assert_close(proximal_gradient(w.detach(), w0, mu), auto)
    torch.testing.assert_close(
        proximal_term(w.detach(), w0, mu), 0.5 * mu * ((w.detach() - w0) ** 2).sum()
    )


def test_zero_total_weight_is_refused() -> None:
    w0, u, _ = _problem(2, 3, 0)
    with pytest.raises(FedledgerError, match="sum to zero"):
        FedAvg().aggregate(w0, u, torch.zeros(2, dtype=torch.float64))


def test_registry_builds_from_config_and_names_known_strategies() -> None:
    assert isinstance(create_strategy(StrategyConfig(name="fedavgm")), FedAvgM)
    assert create_strategy(StrategyConfig(name="fedadam")).server_lr == 0.01  # type: ignore[attr-defined]
    assert create_strategy(StrategyConfig(name="fedadam", server_lr=0.3)).server_lr == 0.3  # type: ignore[attr-defined]
    with pytest.raises(RegistryError, match="fedadam, fedavg, fedavgm"):
        create_strategy(StrategyConfig(name="krumm"))
    assert {"fedavg", "fedavgm", "fedadam", "median", "krum", "trimmed_mean", "bulyan"} <= set(
        STRATEGIES
    )
