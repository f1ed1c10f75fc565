"""FedAdam: an Adam server optimiser on the mean device update."""

from __future__ import annotations

import torch

from fedledger.config import StrategyConfig
from fedledger.strategies.base import RoundContext, Strategy, weighted_mean

__all__ = ["FedAdam"]


class FedAdam(Strategy):
    """Reddi et al., 2021, "Adaptive Federated Optimization" (Algorithm 2, FedAdam)::

        m ← β1 m + (1 − β1) Δ̄
        v ← β2 v + (1 − β2) Δ̄²
        w ← w + η m / (√v + τ)

    with m₀ = 0 and v₀ = τ² (no bias correction, as in the paper).

    Parameters
    ----------
    server_lr
        η (the paper tunes it in [1e-3, 1]; 0.01 is a common choice).
    beta1, beta2
        Moment decay rates.
    tau
        Adaptivity; controls how far the update can deviate from sign-SGD.
    """

    name = "fedadam"
    averaging = True

    def __init__(
        self, server_lr: float = 0.01, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3
    ) -> None:
        self.server_lr = server_lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.tau = tau
        self.m: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    @classmethod
    def from_config(cls, cfg: StrategyConfig) -> FedAdam:
        lr = 0.01 if cfg.server_lr is None else cfg.server_lr
        return cls(server_lr=lr, beta1=cfg.beta1, beta2=cfg.beta2, tau=cfg.tau)

    def aggregate(
        self,
        global_params: torch.Tensor,
        updates: torch.Tensor,
        weights: torch.Tensor,
        context: RoundContext | None = None,
    ) -> torch.Tensor:
        delta = weighted_mean(updates, weights)
        if self.m is None or self.v is None:
            self.m = torch.zeros_like(delta)
            self.v = torch.full_like(delta, self.tau**2)
        self.m = self.beta1 * self.m + (1 - self.beta1) * delta
        self.v = self.beta2 * self.v + (1 - self.beta2) * delta * delta
        return global_params + self.server_lr * self.m / (self.v.sqrt() + self.tau)

    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.m is None or self.v is None:
            return {}
        return {"m": self.m, "v": self.v}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.m = state.get("m")
        self.v = state.get("v")
