"""FedProx's proximal term, added to every device's local objective."""

from __future__ import annotations

import torch

__all__ = ["proximal_gradient", "proximal_term"]


def proximal_term(params: torch.Tensor, global_params: torch.Tensor, mu: float) -> torch.Tensor:
    """``(μ / 2) · ‖w − w_global‖²``.

    Li et al., 2020, "Federated Optimization in Heterogeneous Networks" (FedProx), eq. (2): each
    device minimises ``F_k(w) + (μ/2)‖w − w^t‖²``. The server side of FedProx is FedAvg.
    """
    diff = params - global_params
    return 0.5 * mu * (diff * diff).sum()


def proximal_gradient(params: torch.Tensor, global_params: torch.Tensor, mu: float) -> torch.Tensor:
    """Gradient of :func:`proximal_term` with respect to ``params``: ``μ (w − w_global)``."""
    return mu * (params - global_params)
