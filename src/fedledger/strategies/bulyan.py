"""Bulyan: iterated Krum to select updates, then a trimmed mean around the median."""

from __future__ import annotations

import torch

from fedledger.config import StrategyConfig
from fedledger.errors import FedledgerError
from fedledger.strategies.base import RoundContext, Strategy
from fedledger.strategies.krum import krum_neighbours, krum_scores
from fedledger.strategies.median import coordinate_median

__all__ = ["Bulyan", "bulyan_sizes"]


def bulyan_sizes(n: int, byzantine: int) -> tuple[int, int, int]:
    """``(f, θ, β)`` for ``n`` rows: the assumed attackers, the rows selected and the values
    averaged per coordinate.

    ``byzantine = 0`` stands for the largest ``f`` Bulyan tolerates, ``(n − 3) // 4`` (it needs
    ``n ≥ 4f + 3``); so with fewer than 7 rows ``f = 0`` and Bulyan is the unweighted mean.
    Then ``θ = n − 2f`` and ``β = θ − 2f``. When an explicit ``f`` is too large for ``n`` both
    are floored at 1: with ``θ = 1`` Bulyan is Krum (the single row of lowest score), and with
    ``β = 1`` each coordinate is the selected value nearest the median.
    """
    f = byzantine if byzantine > 0 else max((n - 3) // 4, 0)
    theta = max(n - 2 * f, 1)
    beta = max(theta - 2 * f, 1)
    return f, theta, beta


class Bulyan(Strategy):
    """El Mhamdi, Guerraoui and Rouault, 2018, "The Hidden Vulnerability of Distributed
    Learning in Byzantium" (Bulyan over Krum)::

        S ← ∅, R ← {Δ_1, …, Δ_n}
        θ times:  i* = argmin_{i ∈ R} Σ_{j ∈ N_R(i)} ‖Δ_i − Δ_j‖²,  S ← S ∪ {i*},  R ← R ∖ {i*}
                  (N_R(i): the |R| − f − 2 rows of R nearest to Δ_i, j ≠ i — Krum on R)
        m_j = med(Δ_{i,j} : i ∈ S)
        M_j = the β values Δ_{i,j}, i ∈ S, nearest to m_j
        w ← w + η · (1/β) Σ_{x ∈ M_j} x          for every coordinate j

    with ``θ = n − 2f`` and ``β = θ − 2f``. Krum scores are recomputed on the remaining rows at
    every step (ties go to the lower row index), and ties in the distance to the median go to
    the lower row index too. The rows never selected are reported in :attr:`flagged`. Sample
    counts are reported by the devices themselves and would let an attacker buy weight, so
    ``weights`` is ignored. The selection recomputes Krum θ times, ``O(θ · n² · P)`` in all.

    Parameters
    ----------
    server_lr
        η; 1.0 reproduces the paper.
    byzantine
        f, the assumed number of malicious devices per round; 0 = the most Bulyan tolerates for
        the round's ``n``, ``(n − 3) // 4``. An ``f`` too large for ``n`` floors θ and β at 1
        (see :func:`bulyan_sizes`).
    """

    name = "bulyan"
    screens = True

    def __init__(self, server_lr: float = 1.0, byzantine: int = 0) -> None:
        if byzantine < 0:
            raise FedledgerError(f"bulyan: byzantine must be >= 0, not {byzantine}")
        self.server_lr = server_lr
        self.byzantine = byzantine

    @classmethod
    def from_config(cls, cfg: StrategyConfig) -> Bulyan:
        lr = 1.0 if cfg.server_lr is None else cfg.server_lr
        return cls(server_lr=lr, byzantine=cfg.byzantine)

    def selected(self, updates: torch.Tensor) -> list[int]:
        """Indices of the θ rows the iterated Krum selects, in the order it picks them
        (ascending when ``f = 0`` and so every row is kept)."""
        n = updates.shape[0]
        if n == 0:
            raise FedledgerError("cannot aggregate: there are no updates")
        f, theta, _ = bulyan_sizes(n, self.byzantine)
        if theta >= n:  # f = 0: every row is selected, whatever the order
            return list(range(n))
        remaining = list(range(n))
        chosen: list[int] = []
        for _ in range(theta):
            m = len(remaining)
            scores = krum_scores(updates[remaining], krum_neighbours(m, f))
            best = int(torch.sort(scores, stable=True).indices[0])
            chosen.append(remaining.pop(best))
        return chosen

    def aggregate(
        self,
        global_params: torch.Tensor,
        updates: torch.Tensor,
        weights: torch.Tensor,
        context: RoundContext | None = None,
    ) -> torch.Tensor:
        self.flagged = ()
        n = updates.shape[0]
        idx = sorted(self.selected(updates))
        kept = set(idx)
        self.flagged = tuple(i for i in range(n) if i not in kept)
        _, _, beta = bulyan_sizes(n, self.byzantine)
        rows = updates[idx]
        if beta >= len(idx):
            agg = rows.mean(dim=0)
        else:
            dist = (rows - coordinate_median(rows)).abs()
            nearest = torch.sort(dist, dim=0, stable=True).indices[:beta]
            agg = rows.gather(0, nearest).mean(dim=0)
        if self.server_lr == 1.0:
            return global_params + agg
        return global_params + self.server_lr * agg
