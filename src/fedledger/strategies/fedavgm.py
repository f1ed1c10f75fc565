"""FedAvgM: FedAvg with server momentum."""

from __future__ import annotations

import torch

from fedledger.config import StrategyConfig
from fedledger.strategies.base import RoundContext, Strategy, weighted_mean

__all__ = ["FedAvgM"]


class FedAvgM(Strategy):
    """Hsu, Qi and Brown, 2019, "Measuring the Effects of Non-Identical Data Distribution for
    Federated Visual Classification": ``v ← β v + Δ̄``, ``w ← w + η v`` where Δ̄ is the
    sample-weighted mean update.

    Parameters
    ----------
    server_lr
        η.
    momentum
        β in [0, 1).
    """

    name = "fedavgm"
    averaging = True

    def __init__(self, server_lr: float = 1.0, momentum: float = 0.9) -> None:
        self.server_lr = server_lr
        self.momentum = momentum
        self.velocity: torch.Tensor | None = None

    @classmethod
    def from_config(cls, cfg: StrategyConfig) -> FedAvgM:
        lr = 1.0 if cfg.server_lr is None else cfg.server_lr
        return cls(server_lr=lr, momentum=cfg.momentum)

    def aggregate(
        self,
        global_params: torch.Tensor,
        updates: torch.Tensor,
        weights: torch.Tensor,
        context: RoundContext | None = None,
    ) -> torch.Tensor:
        mean = weighted_mean(updates, weights)
        if self.velocity is None:
            self.velocity = mean.clone()
        else:
            self.velocity = self.momentum * self.velocity + mean
        return global_params + self.server_lr * self.velocity

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {} if self.velocity is None else {"velocity": self.velocity}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.velocity = state.get("velocity")
