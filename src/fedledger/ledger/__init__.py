"""The ledger: contracts, chain backends and the client the rest of fedledger uses.

This is the only fedledger package that imports web3, eth-tester, py-evm or eth-* packages.
Those take about a second to import, so the names below are loaded on first use: importing
a light submodule (``fedledger.ledger.model_store``) does not pull in the EVM.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedledger.ledger.accounts import derive_account
    from fedledger.ledger.backends import BACKENDS, ChainBackend, EmbeddedChain, RpcChain
    from fedledger.ledger.backends.base import Receipt, TransactionReverted
    from fedledger.ledger.client import LedgerClient
    from fedledger.ledger.contracts.abi import Event
    from fedledger.ledger.reader import LedgerReader
    from fedledger.ledger.records import (
        CommitRecord,
        Member,
        RoundInfo,
        VoteRecord,
        agreement_key,
        rewards_digest,
    )

__all__ = [
    "BACKENDS",
    "ChainBackend",
    "CommitRecord",
    "EmbeddedChain",
    "Event",
    "LedgerClient",
    "LedgerReader",
    "Member",
    "Receipt",
    "RoundInfo",
    "RpcChain",
    "TransactionReverted",
    "VoteRecord",
    "agreement_key",
    "derive_account",
    "rewards_digest",
]

_WHERE = {
    "BACKENDS": "backends",
    "ChainBackend": "backends",
    "EmbeddedChain": "backends",
    "RpcChain": "backends",
    "Receipt": "backends.base",
    "TransactionReverted": "backends.base",
    "LedgerClient": "client",
    "LedgerReader": "reader",
    "Event": "contracts.abi",
    "CommitRecord": "records",
    "Member": "records",
    "RoundInfo": "records",
    "VoteRecord": "records",
    "agreement_key": "records",
    "rewards_digest": "records",
    "derive_account": "accounts",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
