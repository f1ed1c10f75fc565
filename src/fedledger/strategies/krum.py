"""Krum and Multi-Krum: keep the updates that sit closest to their neighbours."""

from __future__ import annotations

import torch

from fedledger.config import StrategyConfig
from fedledger.errors import FedledgerError
from fedledger.strategies.base import RoundContext, Strategy

__all__ = ["Krum", "krum_neighbours", "krum_scores"]


def krum_neighbours(n: int, byzantine: int) -> int:
    """How many nearest other rows a Krum score sums over, for ``n`` rows.

    The paper's ``n − f − 2``, where ``byzantine = 0`` stands for the largest ``f`` Krum
    tolerates, ``(n − 3) // 2`` (it needs ``n > 2f + 2``). When ``n − f − 2 < 1`` — too many
    assumed attackers for ``n`` — the score uses the single nearest row, and with one row there
    are no neighbours at all.
    """
    if n <= 1:
        return 0
    f = byzantine if byzantine > 0 else max((n - 3) // 2, 0)
    return max(n - f - 2, 1)


def krum_scores(updates: torch.Tensor, neighbours: int) -> torch.Tensor:
    """Krum score of every row of ``updates`` ``[K, P]``: the sum of the squared L2 distances
    to its ``neighbours`` nearest other rows, as a float64 ``[K]`` tensor.

    Distances come from the Gram matrix in float64, after subtracting the mean row (distances do
    not change, and it avoids cancellation when the rows are close together but far from 0).
    """
    k = updates.shape[0]
    if neighbours <= 0:
        return torch.zeros(k, dtype=torch.float64, device=updates.device)
    x = updates.to(torch.float64)
    x = x - x.mean(dim=0)
    gram = x @ x.T
    sq = gram.diagonal()
    dist = (sq[:, None] + sq[None, :] - 2 * gram).clamp_min(0)
    dist.fill_diagonal_(float("inf"))
    return dist.topk(neighbours, dim=1, largest=False).values.sum(dim=1)


class Krum(Strategy):
    """Blanchard, El Mhamdi, Guerraoui and Stainer, 2017, "Machine Learning with Adversaries:
    Byzantine Tolerant Gradient Descent" (Krum and Multi-Krum)::

        s(i) = Σ_{j ∈ N(i)} ‖Δ_i − Δ_j‖²      N(i): the n − f − 2 rows nearest to Δ_i, j ≠ i
        w ← w + η · mean(Δ_i for the m rows of lowest score)

    ``m = 1`` is Krum (the single row of lowest score, ties broken by the lower index);
    ``m > 1`` is Multi-Krum, the unweighted mean of the ``m`` best rows (at most all ``n``).
    Sample counts are reported by the devices themselves and would let an attacker buy weight,
    so ``weights`` is ignored.

    Parameters
    ----------
    server_lr
        η; 1.0 reproduces the paper.
    byzantine
        f, the assumed number of malicious devices per round; 0 = the most Krum tolerates for
        the round's ``n``, ``(n − 3) // 2``. When ``n − f − 2 < 1`` the score uses one neighbour
        (see :func:`krum_neighbours`).
    select
        m, the number of rows averaged.
    """

    name = "krum"
    screens = True

    def __init__(self, server_lr: float = 1.0, byzantine: int = 0, select: int = 1) -> None:
        if byzantine < 0:
            raise FedledgerError(f"krum: byzantine must be >= 0, not {byzantine}")
        if select < 1:
            raise FedledgerError(f"krum: select must be >= 1, not {select}")
        self.server_lr = server_lr
        self.byzantine = byzantine
        self.select = select

    @classmethod
    def from_config(cls, cfg: StrategyConfig) -> Krum:
        lr = 1.0 if cfg.server_lr is None else cfg.server_lr
        return cls(server_lr=lr, byzantine=cfg.byzantine, select=cfg.krum_select)

    def selected(self, updates: torch.Tensor) -> torch.Tensor:
        """Indices of the rows :meth:`aggregate` averages, best score first."""
        n = updates.shape[0]
        if n == 0:
            raise FedledgerError("cannot aggregate: there are no updates")
        scores = krum_scores(updates, krum_neighbours(n, self.byzantine))
        order = torch.sort(scores, stable=True).indices
        return order[: min(self.select, n)]

    def aggregate(
        self,
        global_params: torch.Tensor,
        updates: torch.Tensor,
        weights: torch.Tensor,
        context: RoundContext | None = None,
    ) -> torch.Tensor:
        idx = self.selected(updates)
        kept = set(idx.tolist())
        self.flagged = tuple(i for i in range(updates.shape[0]) if i not in kept)
        chosen = updates[idx[0]] if len(idx) == 1 else updates[idx].mean(dim=0)
        if self.server_lr == 1.0:
            return global_params + chosen
        return global_params + self.server_lr * chosen
