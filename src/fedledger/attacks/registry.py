"""Config names → attack classes, in one place."""

from __future__ import annotations

from fedledger.attacks.alie import ALIE
from fedledger.attacks.backdoor import Backdoor
from fedledger.attacks.base import Attack
from fedledger.attacks.free_rider import FreeRider
from fedledger.attacks.gaussian import GaussianNoise
from fedledger.attacks.label_flip import LabelFlip
from fedledger.attacks.min_max import MinMax, MinSum
from fedledger.attacks.replay import Replay
from fedledger.attacks.scaling import Scaling
from fedledger.attacks.sign_flip import SignFlip
from fedledger.attacks.sybil import Sybil
from fedledger.config import AttackConfig
from fedledger.errors import RegistryError

__all__ = ["ATTACKS", "create_attack"]

ATTACKS: dict[str, type[Attack]] = {
    "label_flip": LabelFlip,
    "sign_flip": SignFlip,
    "scaling": Scaling,
    "gaussian": GaussianNoise,
    "backdoor": Backdoor,
    "alie": ALIE,
    "min_max": MinMax,
    "min_sum": MinSum,
    "free_rider": FreeRider,
    "replay": Replay,
    "sybil": Sybil,
}


def create_attack(cfg: AttackConfig) -> Attack | None:
    """The attack ``cfg.name`` names (``None`` for ``none``)."""
    if cfg.name == "none":
        return None
    cls = ATTACKS.get(cfg.name)
    if cls is None:
        raise RegistryError("attack", cfg.name, ["none", *ATTACKS])
    return cls(cfg)
