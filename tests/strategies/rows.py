"""Random rounds of updates shared by the strategy tests."""

from __future__ import annotations

import torch


def random_round(k: int, p: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(global [P], updates [K, P], sample counts [K])`` in float64, from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(p, generator=g, dtype=torch.float64),
        torch.randn(k, p, generator=g, dtype=torch.float64),
        torch.randint(1, 100, (k,), generator=g).to(torch.float64),
    )
