"""Median: the coordinate-wise median of the device updates."""

from __future__ import annotations

import torch

from fedledger.config import StrategyConfig
from fedledger.errors import FedledgerError
from fedledger.strategies.base import RoundContext, Strategy

__all__ = ["Median", "coordinate_median"]


def coordinate_median(updates: torch.Tensor) -> torch.Tensor:
    """The median of each column of ``updates`` ``[K, P]``, as a ``[P]`` tensor.

    For an even ``K`` this is the mean of the two middle values (the textbook median, as
    ``numpy.median``), not the lower one that ``torch.median`` returns. One sort along the rows;
    ``torch.quantile`` would do the same with a cap on the input size.
    """
    k = updates.shape[0]
    if k == 0:
        raise FedledgerError("cannot aggregate: there are no updates")
    if k == 1:
        return updates[0].clone()
    s = updates.sort(dim=0).values
    if k % 2:
        return s[k // 2]
    # (a + b) / 2, as numpy computes it (0.5·a + 0.5·b loses subnormal precision)
    return (s[k // 2 - 1] + s[k // 2]) / 2


class Median(Strategy):
    """Yin, Chen, Ramchandran and Bartlett, 2018, "Byzantine-Robust Distributed Learning:
    Towards Optimal Statistical Rates" (coordinate-wise median)::

        w ← w + η · med(Δ_1, …, Δ_K)

    where ``med`` is taken independently for every parameter. The median is unweighted: the
    sample counts are reported by the devices themselves, so a malicious device could claim a
    huge count and outweigh the honest majority; ``weights`` is therefore ignored. Up to just
    under half of the rows can be arbitrary without moving any coordinate outside the range of
    the honest values.

    Parameters
    ----------
    server_lr
        η; 1.0 reproduces the paper.
    """

    name = "median"

    def __init__(self, server_lr: float = 1.0) -> None:
        self.server_lr = server_lr

    @classmethod
    def from_config(cls, cfg: StrategyConfig) -> Median:
        return cls(server_lr=1.0 if cfg.server_lr is None else cfg.server_lr)

    def aggregate(
        self,
        global_params: torch.Tensor,
        updates: torch.Tensor,
        weights: torch.Tensor,
        context: RoundContext | None = None,
    ) -> torch.Tensor:
        med = coordinate_median(updates)
        if self.server_lr == 1.0:
            return global_params + med
        return global_params + self.server_lr * med
