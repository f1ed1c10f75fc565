"""How much each device of a round contributed: five measures, one registry.

Every measure scores the round's updates ``Δ_i`` (rows of ``[K, P]``) of devices with sample
counts ``n_i``; the ones that evaluate models use the coalition game of
:mod:`fedledger.incentives.shapley`, whose value ``v(S)`` is how good ``w + FedAvg(Δ_S)`` is on
the validators' data (``v(∅)`` is the round's starting model ``w``).

========== ================================================================ ==================
method     score of device ``i``                                            model evaluations
========== ================================================================ ==================
data_size  ``n_i / Σ n``                                                    0
cosine     cosine of ``Δ_i`` with the round's aggregate update              0
loo        ``v(N) − v(N ∖ {i})``, leave one out                             K + 1
gtg        GTG-Shapley's estimate of the Shapley value (Liu et al. 2022)    usually ≪ 2^K
shapley    the exact Shapley value                                          2^K
========== ================================================================ ==================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from fedledger.errors import FedledgerError
from fedledger.incentives.free_riders import detect_free_riders
from fedledger.incentives.shapley import (
    EXACT_LIMIT,
    CoalitionValue,
    GtgSettings,
    exact_shapley,
    gtg_shapley,
)
from fedledger.strategies.base import weighted_mean

__all__ = [
    "CONTRIBUTIONS",
    "EXACT_LIMIT",
    "VALUED",
    "RoundAssessment",
    "RoundContribution",
    "RoundGame",
    "assess_round",
    "contribution_scores",
]


@dataclass
class RoundGame:
    """One round, as the measures see it.

    Attributes
    ----------
    base
        The round's starting global parameters ``w``.
    updates
        ``[K, P]`` the devices' deltas.
    weights
        ``[K]`` their sample counts.
    aggregate
        The update the round actually applied (new global − ``w``).
    quality
        How good a parameter vector is on the validators' data (higher is better).
    rng
        Seeded randomness (GTG-Shapley's permutations).
    """

    base: torch.Tensor
    updates: torch.Tensor
    weights: torch.Tensor
    aggregate: torch.Tensor
    quality: Callable[[torch.Tensor], float]
    rng: np.random.Generator

    @classmethod
    def of_round(
        cls,
        base: torch.Tensor,
        updates: torch.Tensor,
        weights: torch.Tensor,
        candidate: torch.Tensor,
        quality: Callable[[torch.Tensor], float],
        seed: int,
        round_number: int,
    ) -> RoundGame:
        """Round ``round_number``'s game of a run seeded ``seed``, which produced
        ``candidate`` from ``base``: its permutations are drawn from
        ``default_rng([seed, round_number, 12])`` (stream 12 of
        :func:`fedledger.fl.round_data.round_rng`), whoever plays it."""
        return cls(
            base=base,
            updates=updates,
            weights=weights,
            aggregate=candidate - base,
            quality=quality,
            rng=np.random.default_rng([seed, round_number, 12]),
        )

    def value(self) -> CoalitionValue:
        """``v(S)`` = quality of ``w`` plus the sample-weighted mean of ``S``'s updates."""

        def fn(coalition: frozenset[int]) -> float:
            if not coalition:
                return self.quality(self.base)
            rows = sorted(coalition)
            delta = weighted_mean(self.updates[rows], self.weights[rows])
            return self.quality(self.base + delta)

        return CoalitionValue(fn)


@dataclass(frozen=True)
class RoundContribution:
    """Scores in the order of the round's rows, and the model evaluations they took."""

    scores: np.ndarray
    evaluations: int


def _data_size(game: RoundGame) -> RoundContribution:
    w = game.weights.to(torch.float64)
    total = float(w.sum())
    scores = (w / total).numpy() if total > 0 else np.zeros(len(w))
    return RoundContribution(scores, 0)


def _cosine(game: RoundGame) -> RoundContribution:
    x = game.updates.to(torch.float64)
    a = game.aggregate.to(torch.float64)
    denom = x.norm(dim=1) * a.norm()
    cos = torch.where(denom > 0, (x @ a) / denom.clamp_min(1e-300), torch.zeros(len(x)))
    return RoundContribution(cos.numpy(), 0)


def _loo(game: RoundGame) -> RoundContribution:
    value = game.value()
    everyone = frozenset(range(len(game.updates)))
    full = value(everyone)
    scores = np.array([full - value(everyone - {i}) for i in range(len(game.updates))])
    return RoundContribution(scores, value.evaluations)


def _gtg(game: RoundGame) -> RoundContribution:
    value = game.value()
    scores = gtg_shapley(len(game.updates), value, game.rng, GtgSettings())
    return RoundContribution(scores, value.evaluations)


def _shapley(game: RoundGame) -> RoundContribution:
    k = len(game.updates)
    if k > EXACT_LIMIT:
        raise FedledgerError(
            f"exact Shapley over {k} devices needs 2^{k} model evaluations; it is the "
            f'reference for at most {EXACT_LIMIT} (use incentives.method = "gtg")'
        )
    value = game.value()
    return RoundContribution(exact_shapley(k, value), value.evaluations)


CONTRIBUTIONS: dict[str, Callable[[RoundGame], RoundContribution]] = {
    "data_size": _data_size,
    "cosine": _cosine,
    "loo": _loo,
    "gtg": _gtg,
    "shapley": _shapley,
}
"""Contribution measures by ``incentives.method``."""

VALUED = frozenset({"loo", "gtg", "shapley"})
"""The measures that evaluate models on the validators' data."""


def contribution_scores(method: str, game: RoundGame) -> RoundContribution:
    """Score the round's devices with ``method`` (a key of :data:`CONTRIBUTIONS`)."""
    try:
        measure = CONTRIBUTIONS[method]
    except KeyError:
        raise FedledgerError(
            f"unknown contribution measure {method!r}; choose from {sorted(CONTRIBUTIONS)}"
        ) from None
    return measure(game)


@dataclass(frozen=True)
class RoundAssessment:
    """What the devices' updates of a round say about them: contribution scores and
    free-riding, by row."""

    scores: np.ndarray
    free_riders: dict[int, str]
    """``{row: kind}`` (see :func:`~fedledger.incentives.free_riders.detect_free_riders`)."""
    evaluations: int


def assess_round(method: str, game: RoundGame, step: torch.Tensor | None) -> RoundAssessment:
    """Score ``game``'s rows with ``method`` and screen them for free riders, ``step`` being
    the last global step (``None`` in the first round). Whoever sees the updates runs this:
    the simulation on plain updates, the enclave on sealed ones."""
    result = contribution_scores(method, game)
    riders = detect_free_riders(game.updates, step)
    return RoundAssessment(result.scores, riders, result.evaluations)
