"""``ledger_summary``: what a run's ledger holds, by round and by member name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedledger.audit.run import open_ledger, read_chain, transactions_by_round
from fedledger.fl.ledger_records import LedgerRecords

__all__ = ["ledger_summary"]


def ledger_summary(run_dir: Path) -> dict[str, Any]:
    """Rounds (status, digests, commits, votes, the validator gate's recorded outcome, gas),
    balances and stakes by device name.

    The chain is replayed (embedded) or read from its node (rpc); names come from
    ``ledger/deployment.json``.
    """
    records = LedgerRecords(run_dir)
    deployment = records.deployment()
    backend, client = open_ledger(records, deployment)
    try:
        chain = read_chain(client)
        gas = {r: sum(txs.values()) for r, txs in transactions_by_round(records).items()}
    finally:
        backend.close()
    names: dict[bytes, str] = {
        bytes.fromhex(m["id"]): str(m["name"]) for m in deployment.get("members", [])
    }
    txs = {int(r["round"]): len(r.get("transactions", [])) for r in records.rounds()}
    gates = {
        int(r["round"]): r["gate"].get("outcome")
        for r in records.rounds()
        if isinstance(r.get("gate"), dict)
    }

    def name(member: bytes) -> str:
        return names.get(member, member.hex())

    rounds = []
    for r, info in sorted(chain.rounds.items()):
        rounds.append(
            {
                "round": r,
                "status": info["status"],
                "base": info["base"].hex(),
                "model": info["model"].hex() if info["status"] == "finalised" else None,
                "commits": [
                    {"gateway": name(g), "root": root.hex(), "envelopes": count}
                    for g, root, count in chain.commits.get(r, [])
                ],
                "votes": [
                    {
                        "validator": name(v),
                        "model": model.hex(),
                        "agrees": info["status"] == "finalised"
                        and (model, accepted) == (info["model"], info["accepted"]),
                    }
                    for v, model, accepted, _rewards, _metrics in chain.votes.get(r, [])
                ],
                "gate": gates.get(r),
                "gas": gas.get(r, 0),
                "transactions": txs.get(r),
            }
        )
    return {
        "backend": deployment.get("backend"),
        "chain_id": deployment.get("chain_id"),
        "contracts": deployment.get("contracts"),
        "quorum": chain.quorum,
        "members": {
            role: sum(1 for m in chain.members.values() if m["role"] == role)
            for role in ("device", "gateway", "validator")
        },
        "rounds": rounds,
        "gas": {"setup": gas.get(0, 0), "rounds": sum(v for k, v in gas.items() if k > 0)},
        "token": {"total_supply": chain.total_supply, "treasury": chain.treasury},
        "balances": dict(sorted((name(k), v) for k, v in chain.balances.items())),
        "stakes": dict(sorted((name(k), v) for k, v in chain.stakes.items())),
    }
