"""``audit_run``: verify a finished (or stopped) run folder offline.

1. **chain** — replay ``ledger/chain.jsonl`` from its genesis in a fresh in-process EVM and
   re-derive every transaction, receipt and block hash (a dropped, reordered or altered record
   fails here, naming its line).
2. Read the replayed chain's state (registry, rounds, commits, votes, token) and check the run
   folder against it: **config**, **registry**, **envelopes** (signatures and Merkle roots),
   **votes** (quorum, accepted sets, each vote's evaluation evidence), **gate** (each
   validator's gate decision follows from its anchored scores and the margin, and a fallback
   round finalised the base model), **secure** (with secure
   aggregation: each vote's attestation quote, anchored with it, and each round's enclave
   transcript, whose inputs are the committed envelopes and whose output is the finalised
   model; the simulated enclave is labelled as such), **models** (every finalised blob hashes
   to its digest; the final model is the last finalised one), **metrics** (``metrics.jsonl``
   equals the pooled anchored evaluations) and **token** (conservation; every payout matches its
   round's finalised rewards digest and the run's records; ``summary.json``'s balances and
   stakes are the chain's).

A run on an ``rpc`` ledger is checked against the node at its URL instead of a replay.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fedledger.audit.checks import (
    ChainView,
    check_config,
    check_envelopes,
    check_gate,
    check_metrics,
    check_models,
    check_registry,
    check_rounds,
    check_secure,
    check_token,
    check_votes,
)
from fedledger.audit.report import AuditReport, Check
from fedledger.errors import CheckpointError, LedgerError
from fedledger.fl.ledger_records import LedgerRecords
from fedledger.ledger.backends.base import ChainBackend
from fedledger.ledger.backends.embedded import EmbeddedChain
from fedledger.ledger.backends.rpc import RpcChain
from fedledger.ledger.reader import LedgerReader

__all__ = ["audit_run"]


def _replay(
    records: LedgerRecords, deployment: dict[str, Any], check: Check
) -> ChainBackend | None:
    backend = deployment.get("backend")
    try:
        if backend == "embedded":
            chain = EmbeddedChain.replay(records.chain_log, readonly=True)
            if chain.unsealed:
                check.fail(
                    f"{records.chain_log} ends with {chain.unsealed} transaction(s) that no block "
                    f"line seals: the log was cut, or the run stopped in the middle of a round"
                )
            check.checked = chain.block_number()
            check.notes.append(
                f"replayed {chain.block_number()} blocks; head {chain.latest_block_hash()}"
            )
            return chain
        if backend == "rpc":
            rpc = RpcChain(str(deployment.get("url", "")))
            check.checked = rpc.verify_against_node(records.chain_log)
            check.notes.append(
                f"every logged transaction confirmed by the node at {deployment.get('url')}"
            )
            return rpc
        check.fail(f"unknown ledger backend {backend!r} in ledger/deployment.json")
    except (LedgerError, OSError) as exc:
        check.fail(str(exc))
    return None


def transactions_by_round(records: LedgerRecords) -> dict[int, dict[str, int]]:
    """Gas of every transaction in the (replayed, so verified) chain log, by round."""
    out: dict[int, dict[str, int]] = {}
    with records.chain_log.open("rb") as fh:
        for raw in fh:
            try:
                line = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue  # the replay has already reported it
            if isinstance(line, dict) and line.get("kind") == "tx":
                r = int(line.get("round", 0))
                out.setdefault(r, {})[str(line["tx_hash"])] = int(line.get("gas_used", 0))
    return out


def read_chain(client: LedgerReader) -> ChainView:
    """The replayed chain's state as plain data."""
    view = ChainView()
    last = client.last_round()
    for r in range(1, last + 1):
        info = client.round_info(r)
        view.rounds[r] = {
            "status": info.status,
            "base": info.base,
            "config": info.config,
            "model": info.model,
            "accepted": info.accepted,
            "rewards": info.rewards,
        }
        view.commits[r] = [(c.gateway, c.root, c.count) for c in client.commits(r)]
        votes = client.votes(r)
        view.votes[r] = [(v.validator, v.model, v.accepted, v.rewards, v.metrics) for v in votes]
        view.quotes[r] = [(v.validator, v.quote) for v in votes]
        if client.paid(r):
            view.paid.add(r)
    view.members = {
        m.id: {"role": m.role, "key": m.key, "cluster": m.cluster, "status": m.status}
        for m in client.members()
    }
    view.quorum = client.quorum_needed()
    view.quorum_setting = client.quorum_setting()
    view.genesis_model = client.genesis_model()
    view.chain_id = client.backend.chain_id
    view.treasury = client.treasury()
    view.total_supply = client.total_supply()
    view.balances = client.balances()
    view.stakes = client.stakes()
    view.credits = client.credits()
    return view


def audit_run(run_dir: Path) -> AuditReport:
    """Every check on ``run_dir``; ``report.ok`` is True only if all of them pass.

    Raises
    ------
    CheckpointError
        ``run_dir`` is not a run folder with a ledger (run with ``ledger.backend = "none"``).
    """
    records = LedgerRecords(run_dir)
    if not (run_dir / "config.toml").is_file():
        raise CheckpointError(f"{run_dir} is not a run folder: config.toml is missing")
    if not records.exists():
        raise CheckpointError(
            f'{run_dir} has no ledger to audit (it ran with ledger.backend = "none")'
        )
    deployment = records.deployment()
    report = AuditReport(str(run_dir))
    chain_check = Check("chain", "the recorded chain replays to the same block hashes and state")
    report.checks.append(chain_check)
    backend = _replay(records, deployment, chain_check)
    if backend is None:
        return report
    try:
        client = _attach(backend, deployment)
        chain = read_chain(client)
    except (LedgerError, KeyError, TypeError, ValueError) as exc:
        chain_check.fail(f"cannot read the contracts' state: {exc}")
        return report
    report.facts = {
        "backend": deployment.get("backend"),
        "rounds": len(chain.rounds),
        "finalised": sum(1 for i in chain.rounds.values() if i["status"] == "finalised"),
        "quorum": chain.quorum,
        "members": len(chain.members),
    }
    chain.txs = transactions_by_round(records)
    report.checks += [
        check_config(run_dir, chain),
        check_registry(deployment, chain),
        check_rounds(records, chain),
        check_envelopes(records, chain),
        check_votes(records, chain),
        check_gate(run_dir, records, chain),
        check_secure(run_dir, records, chain, client.measurement_ok),
        check_models(run_dir, records, chain),
        check_metrics(run_dir, records, chain),
        check_token(run_dir, records, chain),
    ]
    backend.close()
    return report


def _attach(backend: ChainBackend, deployment: dict[str, Any]) -> LedgerReader:
    """A reader on the run's contracts, checked to belong to the recorded authority (an
    auditor holds no key, so it only reads)."""
    contracts = {str(k): str(v) for k, v in dict(deployment["contracts"]).items()}
    reader = LedgerReader(backend, contracts)
    reader.check_authority(str(deployment["authority"]))
    return reader


def open_ledger(
    records: LedgerRecords, deployment: dict[str, Any]
) -> tuple[ChainBackend, LedgerReader]:
    """The run's chain (replayed, or its rpc node) and a reader on it.

    Raises
    ------
    LedgerError
        The chain does not replay, or the contracts cannot be read.
    """
    check = Check("chain", "")
    backend = _replay(records, deployment, check)
    if backend is None:
        raise LedgerError(check.problems[0])
    try:
        return backend, _attach(backend, deployment)
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerError(f"ledger/deployment.json is incomplete: {exc}") from None
