"""Simulated adversaries (``[attack]``), one registry entry each."""

from fedledger.attacks.base import Attack, AttackContext, choose_malicious
from fedledger.attacks.registry import ATTACKS, create_attack

__all__ = ["ATTACKS", "Attack", "AttackContext", "choose_malicious", "create_attack"]
