"""What a simulated adversary can do: poison its training labels, or replace its update.

Malicious devices are a seeded fraction of the devices (:func:`choose_malicious`); the same
config and seed choose the same ones, and ``devices.json`` lists them. An attack acts where a
real compromised device could: on its own data before training (:meth:`Attack.poison_labels`)
or on the update it sends (:meth:`Attack.poison_updates`). It never touches other devices.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from fedledger.config import AttackConfig

__all__ = ["Attack", "choose_malicious"]


def choose_malicious(n_devices: int, fraction: float, seed: int) -> list[int]:
    """``round(fraction · n_devices)`` device indexes drawn with ``default_rng([seed, 0, 5])``,
    sorted."""
    k = round(fraction * n_devices)
    if k == 0:
        return []
    rng = np.random.default_rng([seed, 0, 5])
    return sorted(int(i) for i in rng.choice(n_devices, size=k, replace=False))


class Attack:
    """A simulated adversary (see the module docstring).

    Both hooks do nothing here; an attack overrides one or both.

    Parameters
    ----------
    cfg
        The ``[attack]`` section.
    """

    name: ClassVar[str]
    needs_classes: ClassVar[bool] = False
    """True if the attack works on class labels (not on a benign-only reconstruction task)."""

    def __init__(self, cfg: AttackConfig) -> None:
        self.cfg = cfg

    def poison_labels(self, y: np.ndarray, rows: np.ndarray, n_classes: int) -> None:
        """Change the labels of a malicious device's training ``rows`` of ``y`` in place."""

    def poison_updates(
        self, updates: torch.Tensor, rows: list[int], rng: np.random.Generator
    ) -> None:
        """Replace the malicious ``rows`` of the round's ``[K, P]`` update matrix in place."""
