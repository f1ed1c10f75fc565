"""What every audit check shares: the replayed chain as plain data, and safe reading."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fedledger.audit.report import Check
from fedledger.errors import FedledgerError
from fedledger.fl.ledger_records import LedgerRecords

__all__ = ["ChainView", "brief", "guarded", "members_of", "round_records", "validator_names"]


@dataclass
class ChainView:
    """What the replayed chain says, as plain data (ids and digests as bytes).

    ``rounds[r]`` holds ``status`` ("open", "finalised", "failed"), ``base``, ``config``,
    ``model``, ``accepted``, ``rewards``; ``commits[r]`` is a list of ``(gateway id, root,
    count)``; ``votes[r]`` a list of ``(validator id, model, accepted, rewards, metrics)``;
    ``members[id]`` holds ``role``, ``key``, ``cluster``, ``status``; ``txs[r]`` maps each
    transaction hash of round ``r`` in the chain log to its gas; ``quotes[r]`` is a list of
    ``(validator id, quote digest)`` of round ``r``'s votes, in chain order (32 zero bytes
    where no enclave attested); ``credits[r]`` is round ``r``'s payout as ``(id, amount)``
    pairs, in payout order.
    """

    rounds: dict[int, dict[str, Any]] = field(default_factory=dict)
    commits: dict[int, list[tuple[bytes, bytes, int]]] = field(default_factory=dict)
    votes: dict[int, list[tuple[bytes, bytes, bytes, bytes, bytes]]] = field(default_factory=dict)
    members: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    txs: dict[int, dict[str, int]] = field(default_factory=dict)
    quotes: dict[int, list[tuple[bytes, bytes]]] = field(default_factory=dict)
    quorum: int = 0
    quorum_setting: int = 0
    genesis_model: bytes = b""
    chain_id: int = 0
    treasury: int = 0
    total_supply: int = 0
    balances: dict[bytes, int] = field(default_factory=dict)
    stakes: dict[bytes, int] = field(default_factory=dict)
    paid: set[int] = field(default_factory=set)
    credits: dict[int, list[tuple[bytes, int]]] = field(default_factory=dict)

    def agreeing(self, r: int) -> list[tuple[bytes, bytes, bytes, bytes, bytes]]:
        """Votes of round ``r`` for its finalised result (none if it was not finalised)."""
        info = self.rounds[r]
        if info["status"] != "finalised":
            return []
        key = (info["model"], info["accepted"], info["rewards"])
        return [v for v in self.votes.get(r, []) if (v[1], v[2], v[3]) == key]


def guarded(check: Check, body: Callable[[Check], None]) -> Check:
    """Run ``body``; an unreadable record becomes a problem of ``check``, not a traceback."""
    try:
        body(check)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        check.fail(f"a record is unreadable or incomplete ({type(exc).__name__}: {exc})")
    except (OSError, FedledgerError) as exc:
        check.fail(str(exc))
    return check


def brief(b: bytes) -> str:
    """A digest or id shortened for a message: its first 8 bytes in hex."""
    return b.hex()[:16] + "…"


def round_records(records: LedgerRecords, c: Check) -> dict[int, dict[str, Any]]:
    """``rounds.jsonl`` by round; unreadable and duplicate lines are problems."""
    out: dict[int, dict[str, Any]] = {}
    for number, line in records.round_lines():
        where = f"ledger/rounds.jsonl line {number}"
        if line is None or not isinstance(line.get("round"), int):
            c.fail(f"{where} is not a round record")
            continue
        if line["round"] in out:
            c.fail(f"{where}: a second record for round {line['round']}")
            continue
        out[line["round"]] = line
    return out


def members_of(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    members = deployment.get("members")
    if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
        raise ValueError("ledger/deployment.json has no list of members")
    return members


def validator_names(deployment: dict[str, Any]) -> dict[bytes, str]:
    return {
        bytes.fromhex(m["id"]): str(m["name"])
        for m in members_of(deployment)
        if m.get("role") == "validator"
    }
