"""Checks of the token: conservation, payouts against the finalised rewards digests, and the
run's own account of rewards, penalties, balances and stakes against the chain's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fedledger.audit.checks.common import ChainView, guarded, members_of, round_records
from fedledger.audit.report import Check
from fedledger.fl.ledger_records import LedgerRecords
from fedledger.ledger.records import rewards_digest

__all__ = ["check_token"]


def check_token(run_dir: Path, records: LedgerRecords, chain: ChainView) -> Check:
    c = Check(
        "token",
        "treasury + balances + stakes equal the total supply; every payout is of a finalised "
        "round and matches its rewards digest and the run's records; summary.json's balances "
        "and stakes are the chain's",
    )

    def body(c: Check) -> None:
        held = chain.treasury + sum(chain.balances.values()) + sum(chain.stakes.values())
        c.checked = 1
        if held != chain.total_supply:
            c.fail(f"tokens held ({held}) differ from the total supply ({chain.total_supply})")
        for r in sorted(set(chain.paid) | set(chain.credits)):
            c.checked += 1
            info = chain.rounds.get(r)
            if info is None or info["status"] != "finalised":
                c.fail(f"round {r}: rewards were paid but the round was not finalised")
                continue
            pairs = chain.credits.get(r, [])
            paid = rewards_digest([i for i, _ in pairs], [a for _, a in pairs])
            if paid != info["rewards"]:
                c.fail(
                    f"round {r}: the payout's digest {paid.hex()[:16]}… differs from the "
                    f"finalised rewards digest {info['rewards'].hex()[:16]}…"
                )
        ids = {
            int(m["index"]): bytes.fromhex(m["id"])
            for m in members_of(records.deployment())
            if m.get("role") == "device"
        }
        _check_records(c, records, chain, ids)
        _check_summary(c, run_dir, chain, ids)

    return guarded(c, body)


def _check_records(
    c: Check, records: LedgerRecords, chain: ChainView, ids: dict[int, bytes]
) -> None:
    """Each round's recorded settlement is what the chain paid and took."""
    for r, line in sorted(round_records(records, c).items()):
        entry = line.get("rewards")
        if not isinstance(entry, dict):
            continue
        c.checked += 1
        recorded = [(ids[int(d)], int(a)) for d, a in entry["paid"].items()]
        on_chain = chain.credits.get(r, []) if entry["settled"] else []
        if recorded != on_chain:
            c.fail(f"round {r}: rounds.jsonl records other rewards than the chain paid")
        digest = rewards_digest([i for i, _ in recorded], [a for _, a in recorded])
        if entry["settled"] and digest.hex() != entry["digest"]:
            c.fail(f"round {r}: rounds.jsonl's rewards digest does not match its rewards")


def _check_summary(c: Check, run_dir: Path, chain: ChainView, ids: dict[int, bytes]) -> None:
    """``summary.json``'s balances and stakes (by device index) are the chain's."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return
    summary: Any = json.loads(path.read_text(encoding="utf-8"))
    rewards = summary.get("rewards") if isinstance(summary, dict) else None
    if not isinstance(rewards, dict):
        return
    for key, on_chain in (("balances", chain.balances), ("stakes", chain.stakes)):
        c.checked += 1
        for d, amount in rewards[key].items():
            expected = on_chain.get(ids[int(d)], 0)
            if int(amount) != expected:
                c.fail(
                    f"summary.json: device {d}'s {key[:-1]} is {amount}, the chain says {expected}"
                )
