"""The audit's checks: the run folder's records against the replayed chain, and against itself.

Each check takes the facts it needs (a :class:`ChainView` read from the replayed ledger, the
:class:`~fedledger.fl.ledger_records.LedgerRecords`, the model store, ``metrics.jsonl``) and
returns a :class:`~fedledger.audit.report.Check` whose problems name the round, the member and
the file line involved.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedledger.audit.report import Check
from fedledger.config import load_config
from fedledger.errors import EnvelopeError, FedledgerError
from fedledger.fl.ledger_records import LedgerRecords
from fedledger.fl.ledger_setup import ledger_config_digest
from fedledger.fl.tasks import EvalStats
from fedledger.fl.validator import accepted_digest, metrics_digest
from fedledger.ledger.model_store import ModelStore, decode_tensors
from fedledger.report.metrics import metrics_from_confusion
from fedledger.security.envelope import EnvelopeHeader, envelope_digest, verify_header
from fedledger.security.merkle import merkle_root

__all__ = [
    "ChainView",
    "check_config",
    "check_envelopes",
    "check_metrics",
    "check_models",
    "check_registry",
    "check_token",
    "check_votes",
]


@dataclass
class ChainView:
    """What the replayed chain says, as plain data (ids and digests as bytes).

    ``rounds[r]`` holds ``status`` ("open", "finalised", "failed"), ``base``, ``config``,
    ``model``, ``accepted``; ``commits[r]`` is a list of ``(gateway id, root, count)``;
    ``votes[r]`` a list of ``(validator id, model, accepted, rewards, metrics)``;
    ``members[id]`` holds ``role``, ``key``, ``status``.
    """

    rounds: dict[int, dict[str, Any]] = field(default_factory=dict)
    commits: dict[int, list[tuple[bytes, bytes, int]]] = field(default_factory=dict)
    votes: dict[int, list[tuple[bytes, bytes, bytes, bytes, bytes]]] = field(default_factory=dict)
    members: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    quorum: int = 0
    treasury: int = 0
    total_supply: int = 0
    balances: dict[bytes, int] = field(default_factory=dict)
    stakes: dict[bytes, int] = field(default_factory=dict)
    paid: set[int] = field(default_factory=set)


def _hex(b: bytes) -> str:
    return b.hex()[:16] + "…"


def check_config(run_dir: Path, chain: ChainView) -> Check:
    c = Check("config", "config.toml is the config every round was opened with")
    try:
        digest = ledger_config_digest(load_config(run_dir / "config.toml"))
    except FedledgerError as exc:
        c.fail(f"cannot read config.toml: {exc}")
        return c
    for r, info in sorted(chain.rounds.items()):
        c.checked += 1
        if info["config"] != digest:
            c.fail(
                f"round {r}: opened with config digest {_hex(info['config'])}, but "
                f"config.toml hashes to {_hex(digest)} (config.toml was changed)"
            )
    return c


def check_registry(deployment: dict[str, Any], chain: ChainView) -> Check:
    c = Check("registry", "every member in deployment.json is registered on chain with its key")
    for m in deployment.get("members", []):
        c.checked += 1
        mid = bytes.fromhex(m["id"])
        on_chain = chain.members.get(mid)
        if on_chain is None:
            c.fail(f"{m['role']} {m['name']} ({_hex(mid)}) is not registered on chain")
        elif on_chain["key"] != bytes.fromhex(m["key"]) or on_chain["role"] != m["role"]:
            c.fail(f"{m['role']} {m['name']}: key or role differs from the chain's registry")
    revoked = [m for m in chain.members.values() if m["status"] != "active"]
    if revoked:
        c.notes.append(f"{len(revoked)} member(s) revoked on chain")
    return c


def check_envelopes(records: LedgerRecords, chain: ChainView) -> Check:
    """Signatures, registration, round binding, uniqueness, and each gateway's Merkle root."""
    c = Check(
        "envelopes",
        "accepted envelopes are signed by registered devices and rebuild every committed root",
    )
    leaves: dict[tuple[int, bytes], list[tuple[int, bytes]]] = {}
    seen: set[tuple[int, bytes]] = set()
    gateway_ids = _gateway_ids(records)
    for number, line in records.envelopes():
        where = f"ledger/envelopes.jsonl line {number}"
        if line is None:
            c.fail(f"{where} is not a JSON object")
            continue
        c.checked += 1
        try:
            header = EnvelopeHeader.from_json(line["header"])
            signature = bytes.fromhex(line["signature"])
            r, gw, leaf = int(line["round"]), int(line["gateway"]), int(line["leaf"])
        except (KeyError, TypeError, ValueError, EnvelopeError) as exc:
            c.fail(f"{where}: unreadable ({exc})")
            continue
        device = chain.members.get(header.device_id)
        if device is None or device["role"] != "device":
            c.fail(f"{where}: device {_hex(header.device_id)} is not registered")
            continue
        if not verify_header(header, signature, device["key"]):
            c.fail(f"{where}: signature of device {_hex(header.device_id)} does not verify")
        if header.round != r:
            c.fail(f"{where}: envelope signed for round {header.round} recorded in round {r}")
        if (r, header.device_id) in seen:
            c.fail(f"{where}: second envelope of device {_hex(header.device_id)} in round {r}")
        seen.add((r, header.device_id))
        if gw >= len(gateway_ids):
            c.fail(f"{where}: unknown gateway {gw}")
            continue
        leaves.setdefault((r, gateway_ids[gw]), []).append(
            (leaf, envelope_digest(header, signature))
        )
    for r, commits in sorted(chain.commits.items()):
        for gid, root, count in commits:
            got = sorted(leaves.pop((r, gid), []))
            if [i for i, _ in got] != list(range(len(got))):
                c.fail(f"round {r}: gateway {_hex(gid)}'s recorded leaves are not 0..n-1")
            if len(got) != count:
                c.fail(
                    f"round {r}: gateway {_hex(gid)} committed {count} envelopes, "
                    f"{len(got)} are recorded"
                )
            if merkle_root([d for _, d in got]) != root:
                c.fail(
                    f"round {r}: recorded envelopes of gateway {_hex(gid)} do not rebuild "
                    f"its committed Merkle root"
                )
    for (r, gid), _ in sorted(leaves.items()):
        c.fail(f"round {r}: envelopes recorded for gateway {_hex(gid)}, which committed nothing")
    return c


def _gateway_ids(records: LedgerRecords) -> list[bytes]:
    gws = [m for m in records.deployment().get("members", []) if m["role"] == "gateway"]
    return [bytes.fromhex(m["id"]) for m in sorted(gws, key=lambda m: int(m["index"]))]


def check_votes(records: LedgerRecords, chain: ChainView) -> Check:
    """Quorum, validator registration, accepted-set digests and each vote's metrics evidence."""
    c = Check(
        "votes",
        "finalised rounds have a quorum of registered validators voting for the committed set",
    )
    validators = {
        bytes.fromhex(m["id"]): m
        for m in records.deployment().get("members", [])
        if m["role"] == "validator"
    }
    recorded = {int(r["round"]): r for r in records.rounds()}
    for r, info in sorted(chain.rounds.items()):
        votes = chain.votes.get(r, [])
        c.checked += len(votes)
        roots = [root for _, root, _ in chain.commits.get(r, [])]
        expected_set = accepted_digest(roots)
        agree = [
            v
            for v in votes
            if (v[1], v[2], v[3]) == (info["model"], info["accepted"], info["rewards"])
        ]
        if info["status"] == "finalised":
            if len(agree) < chain.quorum:
                c.fail(
                    f"round {r}: finalised with {len(agree)} agreeing votes, quorum is "
                    f"{chain.quorum}"
                )
            if info["accepted"] != expected_set:
                c.fail(f"round {r}: finalised accepted-set digest is not the gateways' roots")
        for vid, model, accepted, _rewards, mdigest in votes:
            name = validators.get(vid, {}).get("name", _hex(vid))
            if vid not in validators:
                c.fail(f"round {r}: vote from {_hex(vid)}, not a validator of this run")
            if info["status"] == "finalised" and (model, accepted) != (
                info["model"],
                info["accepted"],
            ):
                why = "a model digest" if model != info["model"] else "an accepted set"
                c.notes.append(
                    f"round {r}: {name} was outvoted (voted for {why} the quorum did not)"
                )
            rec = recorded.get(r)
            ev = (
                None
                if rec is None
                else next(
                    (v for v in rec.get("votes", []) if f"validator-{v.get('validator')}" == name),
                    None,
                )
            )
            if ev is None:
                c.fail(f"round {r}: no recorded evaluation for {name}'s vote")
                continue
            try:
                stats = EvalStats.from_json(ev["stats"])
                digest = metrics_digest(r, name, model, stats, rec["context"])  # type: ignore[index]
            except (KeyError, TypeError, ValueError) as exc:
                c.fail(f"round {r}: {name}'s recorded evaluation is unreadable ({exc})")
                continue
            if digest != mdigest:
                c.fail(
                    f"round {r}: {name}'s recorded evaluation does not match the metrics "
                    f"digest of its vote (ledger/rounds.jsonl was changed)"
                )
        if info["status"] != "finalised":
            c.notes.append(f"round {r}: not finalised ({info['status']}); the previous model stood")
    return c


def check_models(run_dir: Path, chain: ChainView) -> Check:
    """Every blob hashes to its name; every round's base and finalised model are stored; the
    final model is the last finalised one."""
    c = Check(
        "models",
        "every model blob hashes to its digest; each round starts from the last finalised model",
    )
    store = ModelStore(run_dir / "store")
    for digest in store.digests():
        c.checked += 1
        try:
            store.get(digest)
        except FedledgerError as exc:
            c.fail(str(exc))
    latest: bytes | None = None
    for r, info in sorted(chain.rounds.items()):
        if latest is not None and info["base"] != latest:
            c.fail(f"round {r}: opened on {_hex(info['base'])}, not the last finalised model")
        wanted = [("base", info["base"])]
        if info["status"] == "finalised":
            wanted.append(("finalised model", info["model"]))
            latest = info["model"]
        for what, digest in wanted:
            if not store.has(digest.hex()):
                c.fail(f"round {r}: the {what} {digest.hex()} is not in the model store")
    if latest is not None:
        _check_final_model(run_dir, store, latest, c)
    return c


def _check_final_model(run_dir: Path, store: ModelStore, latest: bytes, c: Check) -> None:
    final = run_dir / "model.safetensors"
    if not final.exists():
        return  # an unfinished run: nothing to compare yet
    try:
        params = decode_tensors(store.get(latest.hex()))
        model = decode_tensors(final.read_bytes())
    except FedledgerError:
        return  # already reported above
    for name, tensor in params.items():
        if name not in model or not bool((model[name] == tensor).all()):
            c.fail(
                f"model.safetensors: parameter {name} differs from the last finalised "
                f"model {_hex(latest)}"
            )
            return
    c.checked += 1


def _expected_metrics(record: dict[str, Any]) -> dict[str, float]:
    """accuracy, macro-F1 and loss from the pooled statistics of a round's validators."""
    pooled: EvalStats | None = None
    for v in record["votes"]:
        s = EvalStats.from_json(v["stats"])
        pooled = s if pooled is None else pooled + s
    assert pooled is not None
    n = pooled.confusion.shape[0]
    m = metrics_from_confusion(pooled.confusion, [str(i) for i in range(n)], None)
    sums = pooled.sums
    if "n" in sums:
        loss = sums["loss"] / max(sums["n"], 1.0)
    elif sums["benign_n"] > 0:
        loss = sums["benign_loss"] / sums["benign_n"]
    else:
        loss = sums["all_loss"] / max(sums["all_n"], 1.0)
    return {
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "loss": loss,
        "confusion": m["confusion"],
    }


def check_metrics(run_dir: Path, records: LedgerRecords, chain: ChainView) -> Check:
    """metrics.jsonl of finalised rounds equals what the validators' evidence pools to."""
    c = Check("metrics", "metrics.jsonl matches the validators' evaluations anchored on chain")
    recorded = {int(r["round"]): r for r in records.rounds()}
    path = run_dir / "metrics.jsonl"
    lines: dict[int, tuple[int, dict[str, Any]]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        c.fail(f"cannot read metrics.jsonl: {exc}")
        return c
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            obj = json.loads(raw)
            lines[int(obj["round"])] = (number, obj)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            c.fail(f"metrics.jsonl line {number} is not a round record")
    for r, info in sorted(chain.rounds.items()):
        if info["status"] != "finalised" or r not in recorded:
            continue
        if r not in lines:
            c.fail(f"metrics.jsonl has no line for finalised round {r}")
            continue
        number, obj = lines[r]
        c.checked += 1
        try:
            expected = _expected_metrics(recorded[r])
        except (KeyError, TypeError, ValueError, AssertionError) as exc:
            c.fail(f"round {r}: recorded evaluations unreadable ({exc})")
            continue
        for key, want in expected.items():
            got = obj.get(key)
            same = (
                got == want
                if key == "confusion"
                else (
                    isinstance(got, int | float)
                    and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)
                )
            )
            if not same:
                c.fail(
                    f"metrics.jsonl line {number} (round {r}): {key} is {got!r}, the "
                    f"validators' anchored evaluations give {want!r}"
                )
    return c


def check_token(chain: ChainView) -> Check:
    c = Check(
        "token",
        "treasury + balances + stakes equal the total supply; payouts only for finalised rounds",
    )
    held = chain.treasury + sum(chain.balances.values()) + sum(chain.stakes.values())
    c.checked = 1 + len(chain.paid)
    if held != chain.total_supply:
        c.fail(f"tokens held ({held}) differ from the total supply ({chain.total_supply})")
    for r in sorted(chain.paid):
        info = chain.rounds.get(r)
        if info is None or info["status"] != "finalised":
            c.fail(f"round {r}: rewards were paid but the round was not finalised")
    return c
