"""Trimmed mean: per coordinate, the mean of the device updates once the extremes are dropped."""

from __future__ import annotations

import math

import torch

from fedledger.config import StrategyConfig
from fedledger.errors import FedledgerError
from fedledger.strategies.base import RoundContext, Strategy

__all__ = ["TrimmedMean", "trim_count", "trimmed_mean"]


def trim_count(n: int, fraction: float) -> int:
    """``k = ⌊fraction · n⌋``, the values dropped at each end of a column of ``n``.

    The product gets a 1e-9 tolerance so that binary rounding does not lose a whole value
    (``0.29 · 100`` is ``28.999…`` in floating point, and 29 values are meant), and ``k`` is
    capped at ``(n − 1) // 2`` so that at least one value always remains.
    """
    if not 0 <= fraction < 0.5:
        raise FedledgerError(f"trimmed_mean: trim_fraction must be in [0, 0.5), not {fraction}")
    return min(math.floor(fraction * n + 1e-9), max((n - 1) // 2, 0))


def trimmed_mean(updates: torch.Tensor, k: int) -> torch.Tensor:
    """The mean of each column of ``updates`` ``[K, P]`` without its ``k`` largest and ``k``
    smallest values, as a ``[P]`` tensor (one sort along the rows; ``k = 0`` is the plain mean).
    """
    n = updates.shape[0]
    if n == 0:
        raise FedledgerError("cannot aggregate: there are no updates")
    if k < 0 or 2 * k >= n:
        raise FedledgerError(f"trimmed_mean: cannot drop {k} values at each end of {n}")
    if k == 0:
        return updates.mean(dim=0)
    return updates.sort(dim=0).values[k : n - k].mean(dim=0)


class TrimmedMean(Strategy):
    """Yin, Chen, Kannan and Bartlett, 2018, "Byzantine-Robust Distributed Learning: Towards
    Optimal Statistical Rates" (coordinate-wise trimmed mean)::

        k = ⌊β · n⌋
        trmean_β(Δ)_j = 1 / (n − 2k) · Σ_{i = k+1}^{n−k} Δ_(i),j      Δ_(1),j ≤ … ≤ Δ_(n),j
        w ← w + η · trmean_β(Δ_1, …, Δ_n)

    For every parameter ``j`` the ``k`` largest and ``k`` smallest of the ``n`` values are
    dropped and the rest averaged. The mean is unweighted: the sample counts are reported by the
    devices themselves, so a malicious device could claim a huge count and buy weight among the
    values that survive the trimming; ``weights`` is therefore ignored, as in
    :class:`~fedledger.strategies.median.Median`. With at most ``k`` malicious rows, every
    coordinate stays within the range of the honest values.

    Parameters
    ----------
    server_lr
        η; 1.0 reproduces the paper.
    trim_fraction
        β, the share of the rows dropped at each end, in ``[0, 0.5)``; 0 is the plain mean.
    """

    name = "trimmed_mean"

    def __init__(self, server_lr: float = 1.0, trim_fraction: float = 0.1) -> None:
        trim_count(1, trim_fraction)  # validates the fraction
        self.server_lr = server_lr
        self.trim_fraction = trim_fraction

    @classmethod
    def from_config(cls, cfg: StrategyConfig) -> TrimmedMean:
        lr = 1.0 if cfg.server_lr is None else cfg.server_lr
        return cls(server_lr=lr, trim_fraction=cfg.trim_fraction)

    def aggregate(
        self,
        global_params: torch.Tensor,
        updates: torch.Tensor,
        weights: torch.Tensor,
        context: RoundContext | None = None,
    ) -> torch.Tensor:
        n = updates.shape[0]
        if n == 0:
            raise FedledgerError("cannot aggregate: there are no updates")
        mean = trimmed_mean(updates, trim_count(n, self.trim_fraction))
        if self.server_lr == 1.0:
            return global_params + mean
        return global_params + self.server_lr * mean
