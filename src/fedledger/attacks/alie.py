"""A Little Is Enough: the malicious devices all send the mean of their honest updates shifted
by ``z`` standard deviations, small enough to pass robust aggregation."""

from __future__ import annotations

import math

import torch

from fedledger.attacks.base import Attack, AttackContext

__all__ = ["ALIE", "z_max"]

_P_MIN, _P_MAX = 0.5, 0.9999
_BLOCK = 1 << 22  # float64 elements per column block (32 MB)


def z_max(n: int, f: int) -> float:
    """The paper's largest safe shift for ``f`` malicious of ``n`` updates.

    ``s = ⌊n/2 + 1⌋ − f`` benign devices must lie farther from the mean than the malicious
    ones for them to win a majority, which holds up to ``z_max = Φ⁻¹((n − s)/n)``.

    The probability is clamped into ``[0.5, 0.9999]``: below 0.5 (too few attackers to sway a
    majority) the paper's ``z_max`` would be negative, i.e. a shift *towards* the benign
    direction, so the attack degrades to ``z = 0`` (sending the mean of its honest updates);
    at ``s ≤ 0`` (the attackers are a majority) ``Φ⁻¹(1) = ∞``, capped at
    ``Φ⁻¹(0.9999) ≈ 3.72``.
    """
    s = math.floor(n / 2 + 1) - f
    p = min(max((n - s) / n, _P_MIN), _P_MAX)
    normal = torch.distributions.Normal(0.0, 1.0)
    return float(normal.icdf(torch.tensor(p, dtype=torch.float64)))  # type: ignore[no-untyped-call]


class ALIE(Attack):
    """Baruch, Baruch, Goldberg, NeurIPS 2019, "A Little Is Enough: Circumventing Defenses
    For Distributed Learning".

    The malicious devices pool their honest updates (the rows as they trained them, before
    replacement: the paper's setting, in which attackers estimate the benign distribution from
    their own data), take the coordinate-wise mean ``μ`` and standard deviation ``σ``
    (population, ``ddof = 0``, so ``σ = 0`` for a single malicious row), and all send

        m = μ − z · σ

    with ``z = attack.alie_z``, or if that is ``0`` the paper's ``z_max`` (:func:`z_max`) for
    ``n`` = the round's rows and ``f`` = the malicious rows. Statistics are taken in float64.
    """

    name = "alie"

    def poison_updates(self, updates: torch.Tensor, rows: list[int], ctx: AttackContext) -> None:
        n, f = updates.shape[0], len(rows)
        z = self.cfg.alie_z or z_max(n, f)
        width = updates.shape[1]
        step = max(1, _BLOCK // f)
        for c in range(0, width, step):  # column blocks: bounded float64 memory
            own = updates[rows, c : c + step].double()
            mu = own.mean(dim=0)
            sigma = own.std(dim=0, correction=0)
            updates[rows, c : c + step] = (mu - z * sigma).to(updates.dtype)
