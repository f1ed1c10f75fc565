"""Min-max and min-sum: the malicious devices send the benign mean pushed against the benign
spread as far as the benign updates' own distances allow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from fedledger.attacks.base import Attack, AttackContext
from fedledger.config import AttackConfig

__all__ = ["GAMMA_INIT", "TAU", "BenignGeometry", "MinMax", "MinSum", "search_gamma"]

GAMMA_INIT = 10.0
"""The search's first ``γ`` (the paper's ``γ_init``)."""
TAU = 1e-5
"""The search stops once ``γ`` moves by less than this (the paper's ``τ``)."""
_BLOCK = 1 << 22  # float64 elements per column block (32 MB)
_MAX_STEPS = 200  # the halving search ends within ~25 steps; only a guard


def search_gamma(
    feasible: Callable[[float], bool], gamma_init: float = GAMMA_INIT, tau: float = TAU
) -> float:
    """The largest ``γ`` the halving search of Shejwalkar & Houmansadr (NDSS 2021,
    Algorithm 1) finds feasible, ``0`` if none.

    Start at ``γ = γ_init`` with ``step = γ_init``; at each iteration move ``γ`` up by
    ``step/2`` if ``feasible(γ)`` (remembering it as the last success) and down by ``step/2``
    otherwise, then halve ``step``; stop once ``|γ_succ − γ| ≤ τ``. ``γ`` stays below
    ``2·γ_init``.
    """
    gamma, step, best = gamma_init, gamma_init, 0.0
    for _ in range(_MAX_STEPS):
        if abs(best - gamma) <= tau:
            break
        if feasible(gamma):
            best = gamma
            gamma += step / 2
        else:
            gamma -= step / 2
        step /= 2
    return best


@dataclass(frozen=True)
class BenignGeometry:
    """What the search needs of the ``B`` benign updates ``g_i``, in float64.

    With ``m(γ) = μ − γ·σ``: ``‖m(γ) − g_i‖² = a_i − 2γ·b_i + γ²·c``, so each step of the
    search costs ``O(B)``.

    Attributes
    ----------
    mu, sigma
        ``[P]`` coordinate-wise mean and standard deviation (``ddof = 0``) of the benign rows.
    a
        ``[B]`` ``‖μ − g_i‖²``.
    b
        ``[B]`` ``⟨μ − g_i, σ⟩``.
    c
        ``‖σ‖²``.
    pairwise
        ``[B, B]`` squared distances ``‖g_i − g_j‖²`` (from the centred Gram matrix).
    """

    mu: torch.Tensor
    sigma: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    c: float
    pairwise: torch.Tensor

    @classmethod
    def of(cls, benign: torch.Tensor) -> BenignGeometry:
        """The geometry of the ``[B, P]`` rows ``benign`` (read in column blocks)."""
        n, width = benign.shape
        mu = torch.empty(width, dtype=torch.float64)
        sigma = torch.empty(width, dtype=torch.float64)
        gram = torch.zeros(n, n, dtype=torch.float64)
        b = torch.zeros(n, dtype=torch.float64)
        step = max(1, _BLOCK // max(n, 1))
        for c0 in range(0, width, step):
            block = benign[:, c0 : c0 + step].double()
            mu[c0 : c0 + step] = block.mean(dim=0)
            sigma[c0 : c0 + step] = block.std(dim=0, correction=0)
            centred = block - mu[c0 : c0 + step]  # g_i − μ
            gram += centred @ centred.T
            b -= centred @ sigma[c0 : c0 + step]
        a = gram.diagonal().clone()
        pairwise = (a[:, None] + a[None, :] - 2 * gram).clamp_min(0)
        return cls(mu, sigma, a, b, float(sigma.square().sum()), pairwise)

    def distances(self, gamma: float) -> torch.Tensor:
        """``[B]`` squared distances ``‖m(γ) − g_i‖²``."""
        return (self.a - 2 * gamma * self.b + gamma * gamma * self.c).clamp_min(0)


class _AgnosticAttack(Attack):
    """The AGR-agnostic attacks of Shejwalkar & Houmansadr (see :class:`MinMax`)."""

    def __init__(self, cfg: AttackConfig) -> None:
        super().__init__(cfg)
        self.gamma: float | None = None
        """The ``γ`` of the last round attacked."""

    def feasible(self, geo: BenignGeometry, gamma: float) -> bool:
        """Whether ``m(γ)`` meets the attack's distance constraint."""
        raise NotImplementedError

    def poison_updates(self, updates: torch.Tensor, rows: list[int], ctx: AttackContext) -> None:
        bad = set(rows)
        benign = [k for k in range(updates.shape[0]) if k not in bad]
        # every row of the round is malicious: fall back on the attackers' own honest updates
        # (the paper's partial-knowledge variant)
        geo = BenignGeometry.of(updates[benign or rows])
        gamma = search_gamma(lambda g: self.feasible(geo, g))
        self.gamma = gamma
        updates[rows] = (geo.mu - gamma * geo.sigma).to(updates.dtype)


class MinMax(_AgnosticAttack):
    """Shejwalkar, Houmansadr, NDSS 2021, "Manipulating the Byzantine: Optimizing Model
    Poisoning Attacks and Defenses for Federated Learning": the AGR-agnostic min-max attack.

    With ``g_i`` the benign updates of the round, ``μ`` their mean and the perturbation
    ``∇p = −σ`` (the paper's "inverse standard deviation", ``σ`` their coordinate-wise
    standard deviation), every malicious device sends

        m = μ + γ·∇p,   γ = max { γ : max_i ‖m − g_i‖ ≤ max_{i,j} ‖g_i − g_j‖ }

    i.e. the malicious update is no farther from any benign update than the two farthest
    benign updates are from each other. ``γ`` comes from the paper's halving search
    (:func:`search_gamma`, ``γ_init = 10``, ``τ = 1e-5``); distances are computed in float64.

    This is the paper's *full-knowledge* (omniscient) variant: the attackers read all benign
    rows of the round's update matrix (they never change them). If every row of a round is
    malicious, they use their own honest updates instead (the partial-knowledge variant).
    """

    name = "min_max"

    def feasible(self, geo: BenignGeometry, gamma: float) -> bool:
        return bool(geo.distances(gamma).max() <= geo.pairwise.max())


class MinSum(_AgnosticAttack):
    """Shejwalkar, Houmansadr, NDSS 2021 (see :class:`MinMax`): the AGR-agnostic min-sum
    attack.

    As :class:`MinMax`, with the constraint on the sum of squared distances:

        m = μ + γ·∇p,   γ = max { γ : Σ_i ‖m − g_i‖² ≤ max_i Σ_j ‖g_i − g_j‖² }

    i.e. the malicious update is, in total, no farther from the benign updates than the most
    outlying benign update is. Full-knowledge (omniscient) variant, as :class:`MinMax`.
    """

    name = "min_sum"

    def feasible(self, geo: BenignGeometry, gamma: float) -> bool:
        return bool(geo.distances(gamma).sum() <= geo.pairwise.sum(dim=1).max())
