"""Sign flipping: a malicious device sends ``−scale · Δ``."""

from __future__ import annotations

import torch

from fedledger.attacks.base import Attack, AttackContext

__all__ = ["SignFlip"]


class SignFlip(Attack):
    """Damaskinos, El Mhamdi, Guerraoui, Patra, Taziki, ICML 2018 ("Asynchronous Byzantine
    Machine Learning") and later robust-aggregation benchmarks: the update is reversed,
    ``Δ → −s·Δ`` with ``s = attack.flip_scale`` (default 4: with a fifth of the devices
    malicious, the mean update no longer descends)."""

    name = "sign_flip"

    def poison_updates(self, updates: torch.Tensor, rows: list[int], ctx: AttackContext) -> None:
        updates[rows] *= -self.cfg.flip_scale
