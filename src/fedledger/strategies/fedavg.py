"""FedAvg: the sample-weighted average of device models."""

from __future__ import annotations

import torch

from fedledger.config import StrategyConfig
from fedledger.strategies.base import RoundContext, Strategy, weighted_mean

__all__ = ["FedAvg"]


class FedAvg(Strategy):
    """McMahan et al., 2017, "Communication-Efficient Learning of Deep Networks from
    Decentralized Data": ``w ← w + η · Σ_k (n_k / n) Δ_k`` with server learning rate η = 1.

    Parameters
    ----------
    server_lr
        η; 1.0 reproduces the paper.
    """

    name = "fedavg"
    averaging = True

    def __init__(self, server_lr: float = 1.0) -> None:
        self.server_lr = server_lr

    @classmethod
    def from_config(cls, cfg: StrategyConfig) -> FedAvg:
        return cls(server_lr=1.0 if cfg.server_lr is None else cfg.server_lr)

    def aggregate(
        self,
        global_params: torch.Tensor,
        updates: torch.Tensor,
        weights: torch.Tensor,
        context: RoundContext | None = None,
    ) -> torch.Tensor:
        mean = weighted_mean(updates, weights)
        if self.server_lr == 1.0:
            return global_params + mean
        return global_params + self.server_lr * mean
