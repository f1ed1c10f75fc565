"""Scaling / model replacement: a malicious device trains a poisoned (label-flipped) model and
boosts its update by ``attack.scale``."""

from __future__ import annotations

import torch

from fedledger.attacks.base import AttackContext
from fedledger.attacks.label_flip import LabelFlip

__all__ = ["Scaling"]


class Scaling(LabelFlip):
    """Bagdasaryan, Veit, Hua, Estrin, Shmatikov, AISTATS 2020, "How To Backdoor Federated
    Learning": a device trains its poisoned model (here on flipped labels, as
    :class:`~fedledger.attacks.label_flip.LabelFlip`) and scales its update ``Δ → γ·Δ`` so
    that it dominates the average (with ``γ = n / η`` it replaces the global model).
    ``γ = attack.scale``."""

    name = "scaling"

    def poison_updates(self, updates: torch.Tensor, rows: list[int], ctx: AttackContext) -> None:
        updates[rows] *= self.cfg.scale
