"""Deterministic EVM accounts: the same seed, role and index always give the same key."""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from fedledger.errors import LedgerError

__all__ = ["derive_account"]

_DOMAIN = b"fedledger/ledger-account/v1"
_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def derive_account(seed: int, role: str, index: int) -> LocalAccount:
    """The EVM account of the ``index``-th ``role`` (``"authority"``, ``"gateway"``,
    ``"validator"``, ...) of a run seeded with ``seed``.

    The private key is keccak256 of a domain string, the seed, the role and the index, so a
    config and seed reproduce the same accounts, transactions and chain on every machine.
    These keys are for simulations and test networks: anyone who knows the seed has them.
    """
    if not role or "|" in role:
        raise LedgerError(f"account role must be a non-empty name without '|', got {role!r}")
    if index < 0:
        raise LedgerError(f"account index must not be negative, got {index}")
    material = _DOMAIN + f"|{seed}|{role}|{index}".encode()
    key = keccak(material)
    while not 0 < int.from_bytes(key, "big") < _SECP256K1_ORDER:  # pragma: no cover - ~2^-128
        key = keccak(key)
    account: LocalAccount = Account.from_key(key)
    return account
