"""Simulated adversaries (``[attack]``), one registry entry each."""

from fedledger.attacks.alie import ALIE
from fedledger.attacks.backdoor import Backdoor
from fedledger.attacks.base import Attack, AttackContext, choose_malicious
from fedledger.attacks.free_rider import FreeRider
from fedledger.attacks.gaussian import GaussianNoise
from fedledger.attacks.label_flip import LabelFlip
from fedledger.attacks.min_max import MinMax, MinSum
from fedledger.attacks.registry import ATTACKS, create_attack
from fedledger.attacks.replay import Replay
from fedledger.attacks.scaling import Scaling
from fedledger.attacks.sign_flip import SignFlip
from fedledger.attacks.sybil import Sybil

__all__ = [
    "ALIE",
    "ATTACKS",
    "Attack",
    "AttackContext",
    "Backdoor",
    "FreeRider",
    "GaussianNoise",
    "LabelFlip",
    "MinMax",
    "MinSum",
    "Replay",
    "Scaling",
    "SignFlip",
    "Sybil",
    "choose_malicious",
    "create_attack",
]
