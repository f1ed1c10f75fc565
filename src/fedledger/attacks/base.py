"""What a simulated adversary can do: poison its training data, or replace its update.

Malicious devices are a seeded fraction of the devices (:func:`choose_malicious`); the same
config and seed choose the same ones, and ``devices.json`` lists them. An attack acts where a
real compromised device could: on its own data before training (:meth:`Attack.poison_data`)
or on the update it sends (:meth:`Attack.poison_updates`). An omniscient attack (ALIE,
min-max) may read the benign rows of the round's updates, as the papers assume, but writes only
its own rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from fedledger.config import AttackConfig
from fedledger.data.types import FeatureDomain

__all__ = ["Attack", "AttackContext", "choose_malicious"]


def choose_malicious(n_devices: int, fraction: float, seed: int) -> list[int]:
    """``round(fraction · n_devices)`` device indexes drawn with ``default_rng([seed, 0, 5])``,
    sorted."""
    k = round(fraction * n_devices)
    if k == 0:
        return []
    rng = np.random.default_rng([seed, 0, 5])
    return sorted(int(i) for i in rng.choice(n_devices, size=k, replace=False))


@dataclass(frozen=True)
class AttackContext:
    """What the malicious devices know when they replace their updates in a round.

    Attributes
    ----------
    round
        The round number (1-based).
    devices
        Device id of every row of the update matrix.
    global_params
        ``[P]`` global model the devices trained from.
    previous_params
        ``[P]`` global model of the round before (``None`` in the first round).
    rng
        The round's seeded stream for the attack (``default_rng([seed, round, 4])``).
    """

    round: int
    devices: tuple[int, ...]
    global_params: torch.Tensor
    previous_params: torch.Tensor | None
    rng: np.random.Generator


class Attack:
    """A simulated adversary (see the module docstring).

    The hooks do nothing here; an attack overrides what it needs.

    Parameters
    ----------
    cfg
        The ``[attack]`` section.
    """

    name: ClassVar[str]
    needs_classes: ClassVar[bool] = False
    """True if the attack works on class labels (not on a benign-only reconstruction task)."""
    needs_domain: ClassVar[bool] = False
    """True if :meth:`setup` should get the tabular features' :class:`FeatureDomain`."""

    def __init__(self, cfg: AttackConfig) -> None:
        self.cfg = cfg

    @property
    def clones(self) -> int:
        """Forged identities per malicious device that send copies of its update (Sybil)."""
        return 0

    def setup(
        self,
        classes: tuple[str, ...],
        benign_class: int | None,
        seed: int,
        domain: FeatureDomain | None = None,
    ) -> None:
        """Learn the dataset's classes, and for tabular data the values its features take,
        before the first hook is called (the backdoor picks its target class and trigger
        here)."""

    def poison_data(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray, n_classes: int) -> None:
        """Change a malicious device's training ``rows`` of ``x`` (features) and ``y`` (labels)
        in place; ``x`` and ``y`` are the attackers' own copies."""

    def poison_updates(self, updates: torch.Tensor, rows: list[int], ctx: AttackContext) -> None:
        """Replace the malicious ``rows`` of the round's ``[K, P]`` update matrix in place."""

    def evaluate(
        self, model: nn.Module, x_test: torch.Tensor, y_test: torch.Tensor
    ) -> dict[str, Any]:
        """Attack-specific metrics of a global model on the test split (the backdoor's success
        rate); empty for most attacks."""
        return {}
