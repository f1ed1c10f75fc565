"""Lean ABI encoding and event decoding for the fedledger contracts.

web3's contract objects validate and look up every call by name and argument types; a round
sends only a handful of transactions, but each one must cost as little as possible, so calls
are encoded here once per function signature with ``eth_abi`` directly, and logs are decoded
by their first topic. Both backends share this code, so what is sent is backend-independent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from fedledger.errors import LedgerError

__all__ = ["ContractInterface", "Event", "RawLog"]


@dataclass(frozen=True)
class RawLog:
    """One log entry as a node returns it (backend-neutral)."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    tx_hash: str
    log_index: int


@dataclass(frozen=True)
class Event:
    """A decoded contract event; ``args`` maps the ABI parameter names to Python values."""

    name: str
    address: str
    args: Mapping[str, Any] = field(hash=False)
    block_number: int
    tx_hash: str
    log_index: int


@dataclass(frozen=True)
class _Function:
    name: str
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class _EventSpec:
    name: str
    topic0: bytes
    indexed: tuple[tuple[str, str], ...]
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]


def _type_string(param: Mapping[str, Any]) -> str:
    """ABI type of one parameter, with tuple components spelled out (``(uint8,bytes32)``)."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_type_string(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


class ContractInterface:
    """Encoder/decoder for one contract ABI.

    Parameters
    ----------
    name
        Contract name, used in error messages.
    abi
        The JSON ABI (a list of entries) as the compiler emits it.
    """

    def __init__(self, name: str, abi: Sequence[Mapping[str, Any]]) -> None:
        self.name = name
        self._functions: dict[str, _Function] = {}
        self._events: dict[bytes, _EventSpec] = {}
        self._event_by_name: dict[str, _EventSpec] = {}
        self._constructor: tuple[str, ...] = ()
        for entry in abi:
            kind = entry.get("type")
            if kind == "function":
                inputs = tuple(_type_string(p) for p in entry["inputs"])
                signature = f"{entry['name']}({','.join(inputs)})"
                self._functions[entry["name"]] = _Function(
                    name=entry["name"],
                    selector=keccak(text=signature)[:4],
                    inputs=inputs,
                    outputs=tuple(_type_string(p) for p in entry.get("outputs", ())),
                )
            elif kind == "event":
                types = [_type_string(p) for p in entry["inputs"]]
                spec = _EventSpec(
                    name=entry["name"],
                    topic0=keccak(text=f"{entry['name']}({','.join(types)})"),
                    indexed=tuple(
                        (p["name"], t)
                        for p, t in zip(entry["inputs"], types, strict=True)
                        if p["indexed"]
                    ),
                    data_names=tuple(p["name"] for p in entry["inputs"] if not p["indexed"]),
                    data_types=tuple(
                        t for p, t in zip(entry["inputs"], types, strict=True) if not p["indexed"]
                    ),
                )
                self._events[spec.topic0] = spec
                self._event_by_name[spec.name] = spec
            elif kind == "constructor":
                self._constructor = tuple(_type_string(p) for p in entry["inputs"])

    def encode_call(self, function: str, *args: Any) -> bytes:
        """Call data: 4-byte selector followed by the ABI-encoded arguments."""
        fn = self._function(function)
        if len(args) != len(fn.inputs):
            raise LedgerError(
                f"{self.name}.{function} takes {len(fn.inputs)} arguments, got {len(args)}"
            )
        return fn.selector + abi_encode(fn.inputs, args)

    def encode_constructor(self, *args: Any) -> bytes:
        """ABI-encoded constructor arguments, to append to the deployment bytecode."""
        if len(args) != len(self._constructor):
            raise LedgerError(
                f"{self.name} constructor takes {len(self._constructor)} arguments, got {len(args)}"
            )
        return abi_encode(self._constructor, args) if args else b""

    def decode_output(self, function: str, data: bytes) -> tuple[Any, ...]:
        """Decode what a call to ``function`` returned."""
        return tuple(abi_decode(self._function(function).outputs, data))

    def topic(self, event: str) -> bytes:
        """The first topic (signature hash) of ``event``."""
        try:
            return self._event_by_name[event].topic0
        except KeyError:
            raise LedgerError(f"{self.name} has no event {event!r}") from None

    def decode_log(self, log: RawLog) -> Event | None:
        """Decode a log emitted by this contract, or ``None`` if its topic is not ours."""
        if not log.topics:
            return None
        spec = self._events.get(log.topics[0])
        if spec is None:
            return None
        args: dict[str, Any] = {}
        for (name, kind), topic in zip(spec.indexed, log.topics[1:], strict=True):
            args[name] = abi_decode((kind,), topic)[0]
        args.update(zip(spec.data_names, abi_decode(spec.data_types, log.data), strict=True))
        return Event(
            name=spec.name,
            address=log.address,
            args=args,
            block_number=log.block_number,
            tx_hash=log.tx_hash,
            log_index=log.log_index,
        )

    def _function(self, name: str) -> _Function:
        try:
            return self._functions[name]
        except KeyError:
            raise LedgerError(f"{self.name} has no function {name!r}") from None
