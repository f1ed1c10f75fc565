"""The server-side aggregation interface every strategy implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from fedledger.config import StrategyConfig
from fedledger.errors import FedledgerError

__all__ = ["Strategy", "weighted_mean"]


def weighted_mean(updates: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted average of the rows of ``updates`` ``[K, P]`` by ``weights`` ``[K]`` (one GEMV)."""
    total = weights.sum()
    if not torch.isfinite(total) or float(total) <= 0:
        raise FedledgerError("cannot aggregate: the update weights sum to zero")
    return (weights.to(updates.dtype) / total.to(updates.dtype)) @ updates


class Strategy(ABC):
    """Combine device updates into the next global model.

    Updates are flat: one row per device of ``local − global`` parameters, so every strategy
    (averaging, server optimisers, and the robust rules of later issues) works on a ``[K, P]``
    matrix and never on a particular model class.

    Examples
    --------
    >>> s = FedAvg()
    >>> new_global = s.aggregate(global_params, updates, n_samples)
    """

    name: ClassVar[str]
    averaging: ClassVar[bool] = False
    """True when the strategy depends on the updates only through their weighted mean; then it
    works with ``secagg+`` and ``ckks``, which reveal only the sum of the updates."""

    @classmethod
    @abstractmethod
    def from_config(cls, cfg: StrategyConfig) -> Strategy:
        """Build the strategy from the ``[strategy]`` section."""

    @abstractmethod
    def aggregate(
        self, global_params: torch.Tensor, updates: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Return the new flat global parameters.

        Parameters
        ----------
        global_params
            ``[P]`` parameters the devices started from.
        updates
            ``[K, P]`` deltas ``local − global``, one row per device.
        weights
            ``[K]`` non-negative weights (sample counts).
        """

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Server-optimiser state to checkpoint (empty for stateless strategies)."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if state:
            raise FedledgerError(f"{self.name} keeps no state but a checkpoint has {sorted(state)}")
