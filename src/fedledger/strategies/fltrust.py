"""FLTrust: weight device updates by their agreement with an update trained on clean root data."""

from __future__ import annotations

import torch

from fedledger.config import StrategyConfig
from fedledger.errors import FedledgerError
from fedledger.strategies.base import RoundContext, Strategy

__all__ = ["FLTrust", "trust_scores"]


def trust_scores(updates: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``TS_i = ReLU(cos(Δ_i, g0))`` for every row of ``updates`` ``[K, P]`` against
    ``reference`` ``[P]``, as a float64 ``[K]`` tensor.

    A row whose cosine is undefined — a zero row, a zero reference, or non-finite values —
    scores 0, as does a row pointing away from the reference.
    """
    return _trust(updates.to(torch.float64), reference.to(torch.float64))[0]


def _trust(x: torch.Tensor, g0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Trust scores, row norms and the reference norm of float64 ``x`` ``[K, P]``, ``g0``."""
    norms = torch.linalg.vector_norm(x, dim=1)
    ref_norm = torch.linalg.vector_norm(g0)
    cos = (x @ g0) / (norms * ref_norm)
    ts = torch.where(torch.isfinite(cos) & (cos > 0), cos, torch.zeros_like(cos))
    return ts, norms, ref_norm


class FLTrust(Strategy):
    """Cao, Fang, Liu and Gong, 2021, "FLTrust: Byzantine-robust Federated Learning via Trust
    Bootstrapping" (NDSS)::

        TS_i = ReLU(cos(Δ_i, g0))
        Δ̂_i = Δ_i · ‖g0‖ / ‖Δ_i‖
        w ← w + η · Σ_i TS_i Δ̂_i / Σ_i TS_i

    ``g0`` is :attr:`RoundContext.reference`, the update the server (here, the validators)
    trained from the same global model on its small clean root dataset. A device's trust is its
    cosine with ``g0``, cut at 0, and every update is rescaled to ``g0``'s norm, so an attacker
    can neither point away from the root update nor boost its magnitude. Sample counts play no
    part in the paper's rule (and a device reports its own), so ``weights`` is ignored. Rows of
    trust 0 — negative or zero cosine, a zero row, non-finite values — are reported in
    :attr:`flagged`; when every row has trust 0 the global model is returned unchanged. The
    arithmetic is in float64, the result in the dtype of ``global_params``.

    Parameters
    ----------
    server_lr
        η; 1.0 reproduces the paper.
    """

    name = "fltrust"
    screens = True
    needs_reference = True

    def __init__(self, server_lr: float = 1.0) -> None:
        self.server_lr = server_lr

    @classmethod
    def from_config(cls, cfg: StrategyConfig) -> FLTrust:
        return cls(server_lr=1.0 if cfg.server_lr is None else cfg.server_lr)

    def aggregate(
        self,
        global_params: torch.Tensor,
        updates: torch.Tensor,
        weights: torch.Tensor,
        context: RoundContext | None = None,
    ) -> torch.Tensor:
        self.flagged = ()
        if updates.shape[0] == 0:
            raise FedledgerError("cannot aggregate: there are no updates")
        if context is None or context.reference is None:
            raise FedledgerError(
                "fltrust needs a reference update trained on root data (RoundContext.reference)"
            )
        g0 = context.reference
        if tuple(g0.shape) != tuple(updates.shape[1:]):
            raise FedledgerError(
                f"fltrust: the reference update has shape {tuple(g0.shape)}, "
                f"the updates {tuple(updates.shape[1:])}"
            )
        x = updates.to(torch.float64)
        ts, norms, ref_norm = _trust(x, g0.to(torch.float64))
        self.flagged = tuple(int(i) for i in torch.nonzero(ts == 0).flatten().tolist())
        total = ts.sum()
        if float(total) == 0:
            return global_params.clone()
        trusted = ts > 0  # only these rows enter the sum: 0 · inf would poison it
        coef = ts[trusted] * ref_norm / norms[trusted] / total
        g = coef @ x[trusted]
        new = global_params.to(torch.float64) + self.server_lr * g
        return new.to(global_params.dtype)
