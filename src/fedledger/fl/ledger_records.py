"""The ledger's side of a run folder: what an auditor needs besides the chain itself.

Layout (under ``RUN/ledger/``)::

    deployment.json    backend, contract addresses, every member's id/key/account, quorum
    chain.jsonl        the embedded chain's genesis and every mined transaction (replayable)
    rounds.jsonl       per round: gateway commits and rejections, votes with each validator's
                       evaluation statistics, the validator gate's scores, decisions and
                       outcome (``gate``), the outcome, gas
    envelopes.jsonl    per accepted envelope: header, signature, gateway and Merkle leaf index

Model blobs live in ``RUN/store/<sha256>.safetensors``. Every ``.jsonl`` file is appended
and flushed round by round and cut back to the last checkpointed round on ``--resume``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from fedledger.errors import CheckpointError

__all__ = ["LedgerRecords"]

DEPLOYMENT = "deployment.json"
ROUNDS = "rounds.jsonl"
ENVELOPES = "envelopes.jsonl"
CHAIN = "chain.jsonl"


def _append(path: Path, lines: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(line) + "\n" for line in lines))
        fh.flush()
        os.fsync(fh.fileno())


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """``(line number, record or None if unreadable)`` for every line."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                yield number, None
                continue
            yield number, record if isinstance(record, dict) else None


class LedgerRecords:
    """Reads and writes ``RUN/ledger/``.

    Parameters
    ----------
    run_dir
        The run folder.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / "ledger"

    @property
    def chain_log(self) -> Path:
        return self.path / CHAIN

    @property
    def store_dir(self) -> Path:
        return self.run_dir / "store"

    def exists(self) -> bool:
        return (self.path / DEPLOYMENT).is_file()

    # ---- deployment ---------------------------------------------------------------------
    def write_deployment(self, deployment: Mapping[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / (DEPLOYMENT + ".tmp")
        tmp.write_text(json.dumps(deployment, indent=1), encoding="utf-8")
        os.replace(tmp, self.path / DEPLOYMENT)

    def deployment(self) -> dict[str, Any]:
        p = self.path / DEPLOYMENT
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CheckpointError(f"{self.run_dir} has no ledger ({p} is missing)") from None
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{p} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise CheckpointError(f"{p} does not hold a JSON object")
        return data

    # ---- per round ----------------------------------------------------------------------
    def append_round(self, record: dict[str, Any], envelopes: list[dict[str, Any]]) -> None:
        """Envelopes first, then the round line: a round line means its envelopes are on disk."""
        self.path.mkdir(parents=True, exist_ok=True)
        if envelopes:
            _append(self.path / ENVELOPES, envelopes)
        _append(self.path / ROUNDS, [record])

    def rounds(self) -> list[dict[str, Any]]:
        """Every readable round record, in file order."""
        return [r for _, r in _lines(self.path / ROUNDS) if r is not None]

    def round_lines(self) -> list[tuple[int, dict[str, Any] | None]]:
        return list(_lines(self.path / ROUNDS))

    def envelopes(self) -> list[tuple[int, dict[str, Any] | None]]:
        return list(_lines(self.path / ENVELOPES))

    def truncate(self, last_round: int) -> None:
        """Drop records of rounds after ``last_round`` (unfinished when a run stopped)."""
        for name in (ROUNDS, ENVELOPES):
            p = self.path / name
            if not p.exists():
                continue
            keep = [
                json.dumps(r)
                for _, r in _lines(p)
                if r is not None and int(r.get("round", 0)) <= last_round
            ]
            tmp = p.with_name(p.name + ".tmp")
            tmp.write_text("".join(f"{line}\n" for line in keep), encoding="utf-8")
            os.replace(tmp, p)
