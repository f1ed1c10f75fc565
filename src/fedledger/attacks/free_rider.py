"""Free-riding: a malicious device sends an update it did not train, to earn a share of the
reward (and of the model) for no work."""

from __future__ import annotations

import math

import torch

from fedledger.attacks.base import Attack, AttackContext

__all__ = ["FreeRider"]

FIRST_ROUND_STD = 1e-3
"""``random`` mode's noise σ when there is no previous global step (the first round)."""


class FreeRider(Attack):
    """Lin, Du, Liu, 2019, "Free-riders in Federated Learning: Attacks and Defenses"
    (arXiv:1911.12560), and Fraboni, Vidal, Lorenzi, AISTATS 2021, "Free-rider Attacks on
    Model Aggregation in Federated Learning".

    A free rider holds no useful data (or does not spend the compute) and sends instead, by
    ``attack.mode``, with ``θ_t`` the global model it was sent and ``θ_{t−1}`` the one before:

    * ``zero``: ``Δ = 0`` (the plain free rider);
    * ``stale``: ``Δ = θ_t − θ_{t−1}``, the last global step (Lin et al.'s "delta weights"
      free rider: an update that looks like the model's own trajectory; ``0`` in the first
      round);
    * ``random``: ``Δ ~ N(0, s²·I)`` with ``s = ‖θ_t − θ_{t−1}‖ / √P``, random weights whose
      norm is about that of the last global step so it does not stand out (``s = 1e-3`` in the
      first round), drawn from the round's seeded stream.
    """

    name = "free_rider"

    def poison_updates(self, updates: torch.Tensor, rows: list[int], ctx: AttackContext) -> None:
        mode = self.cfg.mode
        width = updates.shape[1]
        prev = ctx.previous_params
        step = None if prev is None else (ctx.global_params - prev).to(updates.dtype)
        if mode == "zero":
            updates[rows] = 0.0
        elif mode == "stale":
            updates[rows] = 0.0 if step is None else step
        else:
            std = FIRST_ROUND_STD
            if step is not None:
                std = float(step.double().norm()) / math.sqrt(width)
            noise = ctx.rng.normal(0.0, std, size=(len(rows), width))
            updates[rows] = torch.from_numpy(noise).to(updates.dtype)
