"""Ledger backends: one :class:`ChainBackend` interface, an embedded EVM and JSON-RPC."""

from __future__ import annotations

from fedledger.ledger.backends.base import ChainBackend, ContractCall, Receipt, TransactionReverted
from fedledger.ledger.backends.embedded import EmbeddedChain
from fedledger.ledger.backends.rpc import RpcChain

__all__ = [
    "BACKENDS",
    "ChainBackend",
    "ContractCall",
    "EmbeddedChain",
    "Receipt",
    "RpcChain",
    "TransactionReverted",
]

BACKENDS: dict[str, type[ChainBackend]] = {"embedded": EmbeddedChain, "rpc": RpcChain}
