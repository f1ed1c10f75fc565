"""Secure aggregation modes (``[security] secure_aggregation``), one registry entry each.

See :mod:`.base` for the interface, and DESIGN.md "Secure aggregation modes".
"""

from __future__ import annotations

from fedledger.fl.secure.base import (
    RoundInputs,
    SecureAggregator,
    SecureContext,
    SecureOutcome,
    Submission,
    round_nonce,
)
from fedledger.fl.secure.ckks_mode import CkksMode
from fedledger.fl.secure.enclave_mode import EnclaveMode
from fedledger.fl.secure.secagg_mode import SecAggMode

__all__ = [
    "SECURE_MODES",
    "RoundInputs",
    "SecureAggregator",
    "SecureContext",
    "SecureOutcome",
    "Submission",
    "make_secure",
    "round_nonce",
]

SECURE_MODES: dict[str, type[SecureAggregator]] = {
    "enclave": EnclaveMode,
    "secagg+": SecAggMode,
    "ckks": CkksMode,
}


def make_secure(ctx: SecureContext) -> SecureAggregator | None:
    """The mode ``ctx.security.secure_aggregation`` names (``None`` for ``none``)."""
    name = ctx.security.secure_aggregation
    if name == "none":
        return None
    return SECURE_MODES[name](ctx)
