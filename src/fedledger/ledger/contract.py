"""A deployed contract bound to a chain backend: encodes calls, runs views, decodes events."""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address

from fedledger.errors import LedgerError
from fedledger.ledger.backends.base import ChainBackend, ContractCall
from fedledger.ledger.contracts.abi import ContractInterface, Event
from fedledger.ledger.contracts.artifacts import load_artifact

__all__ = ["ZERO_ADDRESS", "BoundContract", "round_topic"]

ZERO_ADDRESS = "0x" + "00" * 20  # "no account" in the registry (devices)


class BoundContract:
    """A deployed contract bound to a backend: encodes calls, runs views, decodes logs."""

    def __init__(self, backend: ChainBackend, name: str, address: str) -> None:
        self.backend = backend
        self.name = name
        self.address: str = to_checksum_address(address)
        self.abi = ContractInterface(name, load_artifact(name)["abi"])

    def tx(self, function: str, *args: Any, gas: int) -> ContractCall:
        return ContractCall(self.address, self.abi.encode_call(function, *args), gas, function)

    def view(self, function: str, *args: Any) -> tuple[Any, ...]:
        try:
            out = self.backend.call(self.address, self.abi.encode_call(function, *args))
        except LedgerError as exc:
            raise LedgerError(f"{function}: {exc}") from None
        return self.abi.decode_output(function, out)

    def events(self, event: str, topic1: bytes | None = None) -> list[Event]:
        logs = self.backend.get_logs(self.address, self.abi.topic(event), topic1)
        decoded = (self.abi.decode_log(log) for log in logs)
        return [e for e in decoded if e is not None]


def round_topic(r: int) -> bytes:
    """The indexed round number of an event, as its log topic."""
    return r.to_bytes(32, "big")
