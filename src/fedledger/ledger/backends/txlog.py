"""The ledger's transaction log: one JSON object per line, appended and flushed as each
transaction is mined.

Line 1 is the genesis record (format name and version, backend, chain id, genesis parameters
and allocations); every later line is a :class:`TxRecord` or, on an embedded chain that puts a
round's transactions in one block, a :class:`BlockRecord` closing that block. An audit rebuilds
the embedded chain from line 1 and re-executes each raw transaction, checking every hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from fedledger.errors import LedgerError

__all__ = [
    "LOG_FORMAT",
    "LOG_VERSION",
    "BlockRecord",
    "LogLine",
    "TxLogWriter",
    "TxRecord",
    "genesis_header",
    "parse_genesis",
    "read_lines",
]

LOG_FORMAT = "fedledger-ledger-log"
LOG_VERSION = 1


@dataclass(frozen=True)
class TxRecord:
    """One mined transaction as logged.

    ``raw`` is the signed transaction (0x-hex), or ``None`` when a node signed it (funding
    from an unlocked dev account); ``timestamp`` is ``None`` where the backend does not fetch
    it; ``block_hash`` is ``None`` when a later :class:`BlockRecord` gives it; ``contract`` is
    the created address for a deployment.
    """

    block: int
    timestamp: int | None
    raw: str | None
    tx_hash: str
    block_hash: str | None
    gas_used: int
    status: int
    round: int
    label: str
    contract: str | None = None

    def to_json(self) -> str:
        """The record as one compact JSON line (no newline)."""
        body = asdict(self)
        if body["contract"] is None:
            del body["contract"]
        return json.dumps({"kind": "tx", **body}, separators=(",", ":"))

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TxRecord:
        """Parse a decoded JSON line; raises ``KeyError``/``TypeError`` if a field is wrong."""
        if obj.get("kind") != "tx":
            raise TypeError(f"kind is {obj.get('kind')!r}, not 'tx'")
        record = cls(
            block=obj["block"],
            timestamp=obj["timestamp"],
            raw=obj["raw"],
            tx_hash=obj["tx_hash"],
            block_hash=obj["block_hash"],
            gas_used=obj["gas_used"],
            status=obj["status"],
            round=obj["round"],
            label=obj["label"],
            contract=obj.get("contract"),
        )
        for name in ("block", "gas_used", "status", "round"):
            if type(getattr(record, name)) is not int:
                raise TypeError(f"{name} is not an integer")
        return record


@dataclass(frozen=True)
class BlockRecord:
    """The sealing of a block that holds several logged transactions (the lines above it)."""

    block: int
    block_hash: str
    transactions: int
    round: int

    def to_json(self) -> str:
        """The record as one compact JSON line (no newline)."""
        return json.dumps({"kind": "block", **asdict(self)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> BlockRecord:
        """Parse a decoded JSON line; raises ``KeyError``/``TypeError`` if a field is wrong."""
        record = cls(
            block=obj["block"],
            block_hash=obj["block_hash"],
            transactions=obj["transactions"],
            round=obj["round"],
        )
        for name in ("block", "transactions", "round"):
            if type(getattr(record, name)) is not int:
                raise TypeError(f"{name} is not an integer")
        return record


@dataclass(frozen=True)
class LogLine:
    """A line read back from a log: its 1-based number, byte offset, text and completeness."""

    number: int
    offset: int
    text: str
    complete: bool


def read_lines(path: Path) -> Iterator[LogLine]:
    """Yield the lines of a log with their byte offsets; the last may lack its newline."""
    offset = 0
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            complete = raw.endswith(b"\n")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise LedgerError(f"{path}:{number}: not UTF-8 text ({exc})") from None
            yield LogLine(number=number, offset=offset, text=text, complete=complete)
            offset += len(raw)


class TxLogWriter:
    """Append-only writer: every record is written and flushed before the call returns."""

    def __init__(self, path: Path, fh: IO[str]) -> None:
        self.path = path
        self._fh = fh

    @classmethod
    def create(cls, path: Path, genesis: Mapping[str, Any]) -> TxLogWriter:
        """Start a new log holding only the genesis line; refuses to overwrite a non-empty one."""
        path = Path(path)
        if path.exists() and path.stat().st_size > 0:
            raise LedgerError(f"{path} already holds a ledger log; replay it to continue")
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = path.open("w", encoding="utf-8")
        writer = cls(path, fh)
        writer._write(json.dumps(dict(genesis), separators=(",", ":"), sort_keys=True))
        return writer

    @classmethod
    def append_to(cls, path: Path, truncate_at: int | None = None) -> TxLogWriter:
        """Continue an existing log, first cutting it to ``truncate_at`` bytes if given."""
        path = Path(path)
        if truncate_at is not None:
            with path.open("r+b") as raw:
                raw.truncate(truncate_at)
        return cls(path, path.open("a", encoding="utf-8"))

    def append(self, record: TxRecord | BlockRecord) -> None:
        """Write one record and flush it."""
        self._write(record.to_json())

    def _write(self, line: str) -> None:
        self._fh.write(line + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Close the file (records are already flushed)."""
        self._fh.close()


def genesis_header(backend: str, chain_id: int, **fields: Any) -> dict[str, Any]:
    """The genesis line's common fields plus backend-specific ones."""
    return {
        "kind": "genesis",
        "format": LOG_FORMAT,
        "version": LOG_VERSION,
        "backend": backend,
        "chain_id": chain_id,
        **fields,
    }


def parse_genesis(path: Path, line: LogLine) -> dict[str, Any]:
    """Parse and check the genesis line of a log."""
    try:
        obj = json.loads(line.text)
    except json.JSONDecodeError as exc:
        raise LedgerError(f"{path}:{line.number}: genesis line is not valid JSON ({exc})") from None
    if not isinstance(obj, dict) or obj.get("kind") != "genesis":
        raise LedgerError(f"{path}:{line.number}: first line is not a genesis record")
    if obj.get("format") != LOG_FORMAT or obj.get("version") != LOG_VERSION:
        raise LedgerError(
            f"{path}:{line.number}: unsupported log format "
            f"{obj.get('format')!r} version {obj.get('version')!r}"
        )
    return obj
