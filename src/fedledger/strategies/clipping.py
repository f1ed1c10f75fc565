"""Norm clipping: bound the L2 norm of every device update, then average."""

from __future__ import annotations

import math

import torch

from fedledger.config import StrategyConfig
from fedledger.errors import FedledgerError
from fedledger.strategies.base import RoundContext, Strategy, weighted_mean
from fedledger.strategies.median import coordinate_median

__all__ = ["NormClipping", "clip_updates"]


def clip_updates(updates: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Every row of ``updates`` ``[K, P]`` scaled by ``min(1, max_norm / ‖row‖)``.

    Rows within the bound keep their values bit for bit, and when no row exceeds it ``updates``
    itself is returned (no copy). Norms are taken in float64, so
    a float32 row too large to square in float32 is still scaled to ``max_norm``, not to 0.
    """
    if math.isnan(max_norm) or max_norm < 0:
        raise FedledgerError(f"clipping: the norm bound must be >= 0, not {max_norm}")
    norms = torch.linalg.vector_norm(updates, dim=1, dtype=torch.float64)
    over = norms > max_norm
    if not bool(over.any()):
        return updates
    factor = torch.where(over, max_norm / norms, torch.ones_like(norms))
    return updates * factor.to(updates.dtype)[:, None]


class NormClipping(Strategy):
    """Sun, Kairouz, Suresh and McMahan, 2019, "Can You Really Backdoor Federated Learning?"
    (norm-difference clipping)::

        Δ_k ← Δ_k · min(1, M / ‖Δ_k‖₂)
        w ← w + η · Σ_k (n_k / n) Δ_k

    A boosted (model-replacement) update is scaled back to the norm of an ordinary one, then
    FedAvg's sample-weighted mean is taken. No device is excluded, so :attr:`flagged` stays
    empty. The server needs every update's norm, so the strategy does not work with ``secagg+``
    or ``ckks`` (``averaging`` is False).

    Parameters
    ----------
    server_lr
        η; 1.0 reproduces the paper.
    clip_norm
        M, the L2 bound; 0 = the median of the round's update norms (the mean of the two middle
        norms for an even count), which adapts the bound to the honest majority.
    """

    name = "clipping"

    def __init__(self, server_lr: float = 1.0, clip_norm: float = 0.0) -> None:
        if math.isnan(clip_norm) or clip_norm < 0:
            raise FedledgerError(f"clipping: clip_norm must be >= 0, not {clip_norm}")
        self.server_lr = server_lr
        self.clip_norm = clip_norm

    @classmethod
    def from_config(cls, cfg: StrategyConfig) -> NormClipping:
        lr = 1.0 if cfg.server_lr is None else cfg.server_lr
        return cls(server_lr=lr, clip_norm=cfg.clip_norm)

    def bound(self, updates: torch.Tensor) -> float:
        """M for this round: ``clip_norm``, or the median update norm when it is 0."""
        if updates.shape[0] == 0:
            raise FedledgerError("cannot aggregate: there are no updates")
        if self.clip_norm > 0:
            return self.clip_norm
        norms = torch.linalg.vector_norm(updates, dim=1, dtype=torch.float64)
        return float(coordinate_median(norms[:, None])[0])

    def aggregate(
        self,
        global_params: torch.Tensor,
        updates: torch.Tensor,
        weights: torch.Tensor,
        context: RoundContext | None = None,
    ) -> torch.Tensor:
        mean = weighted_mean(clip_updates(updates, self.bound(updates)), weights)
        if self.server_lr == 1.0:
            return global_params + mean
        return global_params + self.server_lr * mean
