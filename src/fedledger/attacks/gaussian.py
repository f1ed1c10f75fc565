"""Gaussian noise: a malicious device sends random noise instead of its update."""

from __future__ import annotations

import torch

from fedledger.attacks.base import Attack, AttackContext

__all__ = ["GaussianNoise"]


class GaussianNoise(Attack):
    """Fang, Cao, Jia, Gong, USENIX Security 2020 ("Local Model Poisoning Attacks to
    Byzantine-Robust Federated Learning", the Gaussian baseline): the update is replaced by
    ``N(0, σ²)`` noise, ``σ = attack.noise_std``, drawn from the round's seeded stream."""

    name = "gaussian"

    def poison_updates(self, updates: torch.Tensor, rows: list[int], ctx: AttackContext) -> None:
        noise = ctx.rng.normal(0.0, self.cfg.noise_std, size=(len(rows), updates.shape[1]))
        updates[rows] = torch.from_numpy(noise).to(updates.dtype)
