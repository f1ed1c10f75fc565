"""The server-side aggregation interface every strategy implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch

from fedledger.config import StrategyConfig
from fedledger.errors import FedledgerError

__all__ = ["RoundContext", "Strategy", "weighted_mean"]


@dataclass(frozen=True)
class RoundContext:
    """What a strategy may know about a round besides the updates themselves.

    Attributes
    ----------
    round
        The round number (1-based; 0 when unknown).
    devices
        The device id of each update row (``-1`` for a row whose sender is unknown); empty when
        the caller does not know them. Reputation is kept by device id.
    sizes
        Sizes of the model's layers in the flat vector, in order (empty: one layer).
    reference
        A ``[P]`` update trained on clean root data by whoever holds it (FLTrust's server
        update), or ``None``.
    root_loss
        ``[K]`` float64: how much each update, applied alone to the global model, raises the
        loss on the validators' clean root data (Xie et al. 2019, Zeno's descent score), or
        ``None``.
    benign_shift
        ``[K, F]`` float64: per update and input column, how far setting the column to its
        largest value makes the update's model call the root rows' attacks benign
        (:func:`~fedledger.fl.probe.benign_shift`), or ``None``.
    """

    round: int = 0
    devices: tuple[int, ...] = ()
    reference: torch.Tensor | None = None
    sizes: tuple[int, ...] = ()
    root_loss: torch.Tensor | None = None
    benign_shift: torch.Tensor | None = None


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
    needs_reference: ClassVar[bool] = False
    """True when :meth:`aggregate` needs :attr:`RoundContext.reference` (FLTrust)."""
    needs_root_loss: ClassVar[bool] = False
    """True when :meth:`aggregate` uses :attr:`RoundContext.root_loss` (the anomaly screen)."""
    needs_benign_shift: bool = False
    """True when :meth:`aggregate` uses :attr:`RoundContext.benign_shift` (the anomaly screen
    with its benign-shift rule on)."""
    screens: ClassVar[bool] = False
    """True when the strategy screens or selects updates and so reports :attr:`flagged`."""
    flagged: tuple[int, ...] = ()
    """Rows the last :meth:`aggregate` call excluded as suspicious, ascending (a screening or
    selecting strategy sets it; the engine reports them as detected devices)."""

    @property
    def proximal(self) -> bool:
        """True when the devices should add FedProx's proximal term in the next round (the
        anomaly screen asks for it after a clean round)."""
        return False

    @classmethod
    @abstractmethod
    def from_config(cls, cfg: StrategyConfig) -> Strategy:
        """Build the strategy from the ``[strategy]`` section."""

    @abstractmethod
    def aggregate(
        self,
        global_params: torch.Tensor,
        updates: torch.Tensor,
        weights: torch.Tensor,
        context: RoundContext | None = None,
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
        context
            Round number, device ids and a root-data reference update, for the strategies
            that use them (see :class:`RoundContext`).
        """

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Server-optimiser state to checkpoint (empty for stateless strategies)."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if state:
            raise FedledgerError(f"{self.name} keeps no state but a checkpoint has {sorted(state)}")
