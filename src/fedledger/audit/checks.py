"""The audit's checks: the run folder's records against the replayed chain, and against itself.

Each check takes the facts it needs (a :class:`ChainView` read from the replayed ledger, the
:class:`~fedledger.fl.ledger_records.LedgerRecords`, the model store, ``metrics.jsonl``) and
returns a :class:`~fedledger.audit.report.Check` whose problems name the round, the member and
the file line involved. A record too damaged to read is a problem of the check that reads it,
never a crash (:func:`guarded`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fedledger.audit.report import Check
from fedledger.config import load_config
from fedledger.errors import EnvelopeError, FedledgerError
from fedledger.fl.ledger_records import LedgerRecords
from fedledger.fl.ledger_setup import ledger_config_digest
from fedledger.fl.run_folder import RunFolder
from fedledger.fl.tasks import EvalStats, task_from_labels
from fedledger.fl.validator import accepted_digest, metrics_digest
from fedledger.ledger.model_store import ModelStore, decode_tensors
from fedledger.security.envelope import EnvelopeHeader, envelope_digest, verify_header
from fedledger.security.identity import member_id
from fedledger.security.merkle import merkle_root

__all__ = [
    "ChainView",
    "check_config",
    "check_envelopes",
    "check_metrics",
    "check_models",
    "check_registry",
    "check_rounds",
    "check_token",
    "check_votes",
    "guarded",
]

# metrics.jsonl keys that are not derived from the anchored evaluations
_UNANCHORED = {"round", "seconds", "clients", "timings", "ledger"}


@dataclass
class ChainView:
    """What the replayed chain says, as plain data (ids and digests as bytes).

    ``rounds[r]`` holds ``status`` ("open", "finalised", "failed"), ``base``, ``config``,
    ``model``, ``accepted``, ``rewards``; ``commits[r]`` is a list of ``(gateway id, root,
    count)``; ``votes[r]`` a list of ``(validator id, model, accepted, rewards, metrics)``;
    ``members[id]`` holds ``role``, ``key``, ``cluster``, ``status``; ``txs[r]`` maps each
    transaction hash of round ``r`` in the chain log to its gas.
    """

    rounds: dict[int, dict[str, Any]] = field(default_factory=dict)
    commits: dict[int, list[tuple[bytes, bytes, int]]] = field(default_factory=dict)
    votes: dict[int, list[tuple[bytes, bytes, bytes, bytes, bytes]]] = field(default_factory=dict)
    members: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    txs: dict[int, dict[str, int]] = field(default_factory=dict)
    quorum: int = 0
    quorum_setting: int = 0
    genesis_model: bytes = b""
    chain_id: int = 0
    treasury: int = 0
    total_supply: int = 0
    balances: dict[bytes, int] = field(default_factory=dict)
    stakes: dict[bytes, int] = field(default_factory=dict)
    paid: set[int] = field(default_factory=set)

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


def _hex(b: bytes) -> str:
    return b.hex()[:16] + "…"


def _round_records(records: LedgerRecords, c: Check) -> dict[int, dict[str, Any]]:
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


def _members(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    members = deployment.get("members")
    if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
        raise ValueError("ledger/deployment.json has no list of members")
    return members


def check_config(run_dir: Path, chain: ChainView) -> Check:
    def body(c: Check) -> None:
        config = load_config(run_dir / "config.toml")
        digest = ledger_config_digest(config)
        if (run_dir / "summary.json").is_file() and config.train.rounds != len(chain.rounds):
            c.fail(
                f"config.toml says train.rounds = {config.train.rounds}, but the finished run "
                f"has {len(chain.rounds)} rounds on chain"
            )
        for r, info in sorted(chain.rounds.items()):
            c.checked += 1
            if info["config"] != digest:
                c.fail(
                    f"round {r}: opened with config digest {_hex(info['config'])}, but "
                    f"config.toml hashes to {_hex(digest)} (config.toml was changed)"
                )

    return guarded(Check("config", "config.toml is the config every round was opened with"), body)


def check_registry(deployment: dict[str, Any], chain: ChainView) -> Check:
    """deployment.json and the chain's registry list the same members, keys and settings."""

    def body(c: Check) -> None:
        listed: set[bytes] = set()
        for m in _members(deployment):
            c.checked += 1
            mid = bytes.fromhex(m["id"])
            listed.add(mid)
            if member_id(m["role"], m["name"]) != mid:
                c.fail(
                    f"deployment.json: {m['role']} {m['name']!r} does not have the id {_hex(mid)}"
                )
            on_chain = chain.members.get(mid)
            if on_chain is None:
                c.fail(f"{m['role']} {m['name']} ({_hex(mid)}) is not registered on chain")
                continue
            if on_chain["key"] != bytes.fromhex(m["key"]) or on_chain["role"] != m["role"]:
                c.fail(f"{m['role']} {m['name']}: key or role differs from the chain's registry")
            if m["role"] == "device" and on_chain["cluster"] != m["cluster"]:
                c.fail(f"device {m['name']}: cluster differs from the chain's registry")
        for mid, m in chain.members.items():
            if mid not in listed:
                c.fail(f"the chain registers a {m['role']} {_hex(mid)} that deployment.json omits")
        n_validators = sum(1 for m in chain.members.values() if m["role"] == "validator")
        settings = {
            "quorum": (deployment.get("quorum"), chain.quorum_setting),
            "validators": (deployment.get("validators"), n_validators),
            "genesis_model": (deployment.get("genesis_model"), chain.genesis_model.hex()),
            "chain_id": (deployment.get("chain_id"), chain.chain_id),
        }
        for key, (recorded, actual) in settings.items():
            if recorded != actual:
                c.fail(f"deployment.json: {key} is {recorded!r}, the chain says {actual!r}")
        revoked = [m for m in chain.members.values() if m["status"] != "active"]
        if revoked:
            c.notes.append(f"{len(revoked)} member(s) revoked on chain")

    return guarded(
        Check("registry", "deployment.json lists exactly the members and settings on chain"), body
    )


def _validator_names(deployment: dict[str, Any]) -> dict[bytes, str]:
    return {
        bytes.fromhex(m["id"]): str(m["name"])
        for m in _members(deployment)
        if m.get("role") == "validator"
    }


def check_rounds(records: LedgerRecords, chain: ChainView) -> Check:
    """rounds.jsonl tells the chain's story: the same rounds, outcomes, commits, votes and
    transactions."""

    def body(c: Check) -> None:
        recorded = _round_records(records, c)
        names = _validator_names(records.deployment())
        for r in sorted(set(recorded) - set(chain.rounds)):
            c.fail(f"ledger/rounds.jsonl records round {r}, which is not on the chain")
        for r, info in sorted(chain.rounds.items()):
            rec = recorded.get(r)
            if rec is None:
                c.fail(f"round {r} is on the chain but not in ledger/rounds.jsonl")
                continue
            c.checked += 1
            where = f"ledger/rounds.jsonl (round {r})"
            finalised = info["status"] == "finalised"
            if (rec["status"] == "finalised") != finalised:  # "open" becomes "failed" later
                c.fail(f"{where}: status {rec['status']!r}, the chain says {info['status']!r}")
            model = info["model"].hex() if finalised else None
            if rec["model"] != model:
                c.fail(f"{where}: model {rec['model']!r} is not the chain's {model!r}")
            commits = [(g["root"], g["count"]) for g in rec["gateways"] if g["committed"]]
            on_chain = [(root.hex(), count) for _, root, count in chain.commits.get(r, [])]
            if commits != on_chain:
                c.fail(f"{where}: gateway roots and counts differ from the chain's commits")
            n_honest = int(records.deployment()["validators"]) - int(
                records.deployment()["byzantine"]
            )
            for v in rec["votes"]:
                byzantine = v["validator"] >= n_honest
                if (v["byzantine"] is not None) != byzantine:
                    c.fail(f"{where}: validator-{v['validator']}'s Byzantine flag was changed")
            votes = {f"validator-{v['validator']}": v for v in rec["votes"]}
            for vid, vmodel, vaccepted, _rewards, vmetrics in chain.votes.get(r, []):
                name = names.get(vid, _hex(vid))
                mine = votes.pop(name, None)
                if mine is None or (mine["model"], mine["accepted"], mine["metrics"]) != (
                    vmodel.hex(),
                    vaccepted.hex(),
                    vmetrics.hex(),
                ):
                    c.fail(f"{where}: {name}'s vote differs from the one on chain")
            for name in votes:
                c.fail(f"{where}: a vote of {name} that is not on the chain")
            txs = chain.txs.get(r, {})
            if sorted(rec["transactions"]) != sorted(txs):
                c.fail(f"{where}: its transactions are not the chain's transactions of round {r}")
            if rec["gas"] != sum(txs.values()):
                c.fail(f"{where}: gas {rec['gas']} is not the {sum(txs.values())} on chain")

    return guarded(Check("rounds", "ledger/rounds.jsonl matches the chain round by round"), body)


def check_envelopes(records: LedgerRecords, chain: ChainView) -> Check:
    """Signatures, registration, round binding, uniqueness, and each gateway's Merkle root."""

    def body(c: Check) -> None:
        leaves: dict[tuple[int, bytes], list[tuple[int, bytes]]] = {}
        seen: set[tuple[int, bytes]] = set()
        gateways = sorted(
            (m for m in _members(records.deployment()) if m["role"] == "gateway"),
            key=lambda m: int(m["index"]),
        )
        gateway_ids = [bytes.fromhex(m["id"]) for m in gateways]
        for number, line in records.envelopes():
            where = f"ledger/envelopes.jsonl line {number}"
            if line is None:
                c.fail(f"{where} is not a JSON object")
                continue
            c.checked += 1
            try:
                header = EnvelopeHeader.from_json(line["header"])
                signature = bytes.fromhex(line["signature"])
                r, gw, leaf = line["round"], line["gateway"], line["leaf"]
                if not all(isinstance(x, int) for x in (r, gw, leaf)) or gw < 0 or leaf < 0:
                    raise ValueError("round, gateway and leaf must be non-negative integers")
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
        for r, gid in sorted(leaves):
            c.fail(
                f"round {r}: envelopes recorded for gateway {_hex(gid)}, which committed nothing"
            )

    return guarded(
        Check(
            "envelopes",
            "accepted envelopes are signed by registered devices and rebuild every committed root",
        ),
        body,
    )


def check_votes(records: LedgerRecords, chain: ChainView) -> Check:
    """Quorum, validator registration, accepted-set digests and each vote's metrics evidence."""

    def body(c: Check) -> None:
        names = _validator_names(records.deployment())
        recorded = _round_records(records, Check("", ""))
        for r, info in sorted(chain.rounds.items()):
            votes = chain.votes.get(r, [])
            c.checked += len(votes)
            roots = [root for _, root, _ in chain.commits.get(r, [])]
            if info["status"] == "finalised":
                if len(chain.agreeing(r)) < chain.quorum:
                    c.fail(
                        f"round {r}: finalised with {len(chain.agreeing(r))} agreeing votes, "
                        f"quorum is {chain.quorum}"
                    )
                if info["accepted"] != accepted_digest(roots):
                    c.fail(f"round {r}: finalised accepted-set digest is not the gateways' roots")
            else:
                c.notes.append(
                    f"round {r}: not finalised ({info['status']}); the previous model stood"
                )
            rec = recorded.get(r)
            evidence = (
                {} if rec is None else {f"validator-{v['validator']}": v for v in rec["votes"]}
            )
            for vote in votes:
                vid, model, _accepted, _rewards, mdigest = vote
                name = names.get(vid)
                if name is None:
                    c.fail(f"round {r}: vote from {_hex(vid)}, not a validator of this run")
                    continue
                if info["status"] == "finalised" and vote not in chain.agreeing(r):
                    why = "a model digest" if model != info["model"] else "an accepted set"
                    c.notes.append(
                        f"round {r}: {name} was outvoted (voted for {why} the quorum did not)"
                    )
                ev = evidence.get(name)
                if ev is None or rec is None:
                    c.fail(f"round {r}: no recorded evaluation for {name}'s vote")
                    continue
                stats = EvalStats.from_json(ev["stats"])
                digest = metrics_digest(r, name, model, stats, rec["context"], rec["labels"])
                if digest != mdigest:
                    c.fail(
                        f"round {r}: {name}'s recorded evaluation does not match the metrics "
                        f"digest of its vote (ledger/rounds.jsonl was changed)"
                    )

    return guarded(
        Check(
            "votes",
            "finalised rounds have a quorum of registered validators voting for the committed set",
        ),
        body,
    )


def check_models(run_dir: Path, records: LedgerRecords, chain: ChainView) -> Check:
    """Every blob hashes to its name; every round's base and finalised model are stored; the
    final model, its digest files and the checkpoint are the last finalised model."""

    def body(c: Check) -> None:
        store = ModelStore(run_dir / "store")
        for digest in store.digests():
            c.checked += 1
            try:
                store.get(digest)
            except FedledgerError as exc:
                c.fail(str(exc))
        latest = chain.genesis_model
        for r, info in sorted(chain.rounds.items()):
            if info["base"] != latest:
                c.fail(f"round {r}: opened on {_hex(info['base'])}, not the last finalised model")
            wanted = [("base", info["base"])]
            if info["status"] == "finalised":
                wanted.append(("finalised model", info["model"]))
                latest = info["model"]
            for what, digest in wanted:
                if not store.has(digest.hex()):
                    c.fail(f"round {r}: the {what} {digest.hex()} is not in the model store")
        if store.has(latest.hex()):
            _check_final_files(run_dir, store, latest, max(chain.rounds, default=0), c)

    return guarded(
        Check(
            "models",
            "every model blob hashes to its digest; the final model is the last one "
            "the ledger finalised",
        ),
        body,
    )


def _check_final_files(
    run_dir: Path, store: ModelStore, latest: bytes, last_round: int, c: Check
) -> None:
    params = decode_tensors(store.get(latest.hex()))
    checkpoint = run_dir / "checkpoint.safetensors"
    if last_round and not checkpoint.is_file():
        c.fail("checkpoint.safetensors is missing")
    elif last_round:
        done, flat, _ = RunFolder(run_dir).load_checkpoint()
        expected = torch.cat([t.reshape(-1) for t in params.values()])
        if done != last_round:
            c.fail(
                f"checkpoint.safetensors is of round {done}, the chain's last round is {last_round}"
            )
        elif flat.shape != expected.shape or not bool((flat == expected).all()):
            c.fail("checkpoint.safetensors does not hold the last finalised model")
        c.checked += 1
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        return  # a run that has not finished: no final model yet
    final = run_dir / "model.safetensors"
    if not final.is_file():
        c.fail("summary.json says the run finished, but model.safetensors is missing")
        return
    c.checked += 1
    blob = final.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    if summary.get("model_sha256") != digest:
        c.fail("model.safetensors does not hash to summary.json's model_sha256")
    recorded = (run_dir / "model.sha256").read_text(encoding="utf-8").split()
    if not recorded or recorded[0] != digest:
        c.fail("model.safetensors does not hash to the digest in model.sha256")
    try:
        model = decode_tensors(blob)
    except FedledgerError as exc:
        c.fail(f"model.safetensors: {exc}")
        return
    if set(model) != set(params):
        c.fail("model.safetensors holds other tensors than the last finalised model")
        return
    for name, tensor in params.items():
        other = model[name]
        if (
            other.dtype != tensor.dtype
            or other.shape != tensor.shape
            or not bool((other == tensor).all())
        ):
            c.fail(
                f"model.safetensors: parameter {name} differs from the last finalised model "
                f"{_hex(latest)}"
            )
            return


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(got, int | float):
        return math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-15)
    if isinstance(want, dict) and isinstance(got, dict):
        return set(got) == set(want) and all(_same(got[k], want[k]) for k in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want, strict=True))
    return bool(got == want)


def check_metrics(run_dir: Path, records: LedgerRecords, chain: ChainView) -> Check:
    """metrics.jsonl equals what the agreeing validators' anchored evaluations give, and its
    ``ledger`` entries equal the chain's."""

    def body(c: Check) -> None:
        recorded = _round_records(records, Check("", ""))
        lines: dict[int, tuple[int, dict[str, Any]]] = {}
        for number, raw in enumerate(
            (run_dir / "metrics.jsonl").read_bytes().decode("utf-8", "replace").splitlines(), 1
        ):
            try:
                obj = json.loads(raw)
                r = obj["round"]
                if not isinstance(r, int):
                    raise ValueError(r)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                c.fail(f"metrics.jsonl line {number} is not a round record")
                continue
            if r in lines:
                c.fail(f"metrics.jsonl line {number}: a second line for round {r}")
                continue
            lines[r] = (number, obj)
        for r in sorted(set(lines) - set(chain.rounds)):
            c.fail(f"metrics.jsonl line {lines[r][0]}: round {r} is not on the chain")
        standing: dict[str, Any] | None = None  # metrics of the last finalised model
        for r, info in sorted(chain.rounds.items()):
            if r not in lines:
                c.fail(f"metrics.jsonl has no line for round {r}")
                continue
            number, obj = lines[r]
            where = f"metrics.jsonl line {number} (round {r})"
            c.checked += 1
            agree = chain.agreeing(r)
            _check_ledger_entry(where, obj.get("ledger"), r, info, agree, chain, recorded, c)
            if info["status"] == "finalised":
                rec = recorded[r]
                names = {f"validator-{v['validator']}": v for v in rec["votes"]}
                ids = _validator_names(records.deployment())
                pooled: EvalStats | None = None
                for vote in agree:
                    stats = EvalStats.from_json(names[ids[vote[0]]]["stats"])
                    pooled = stats if pooled is None else pooled + stats
                if pooled is None:
                    c.fail(f"round {r}: no agreeing evaluation to derive metrics from")
                    continue
                standing = task_from_labels(rec["labels"]).metrics(pooled, rec["context"])
            if standing is None:
                c.notes.append(f"round {r}: metrics of the initial model are not anchored")
                continue
            shown = {k: v for k, v in obj.items() if k not in _UNANCHORED}
            for key in sorted(set(shown) | set(standing)):
                if not _same(shown.get(key), standing.get(key)):
                    c.fail(
                        f"{where}: {key} is {shown.get(key)!r}, the validators' anchored "
                        f"evaluations give {standing.get(key)!r}"
                    )
        _check_summary(run_dir, lines, c)

    return guarded(
        Check("metrics", "metrics.jsonl matches the validators' evaluations anchored on chain"),
        body,
    )


def _check_summary(run_dir: Path, lines: dict[int, tuple[int, dict[str, Any]]], c: Check) -> None:
    """summary.json's final metrics are those of the last metrics.jsonl line."""
    path = run_dir / "summary.json"
    if not path.is_file() or not lines:
        return
    summary = json.loads(path.read_text(encoding="utf-8"))
    last = lines[max(lines)][1]
    final = summary["final"]
    for key in sorted(set(final) | {k for k in last if k not in ("per_class", "confusion")}):
        if not _same(final.get(key), last.get(key)):
            c.fail(
                f"summary.json: final {key} is {final.get(key)!r}, metrics.jsonl says "
                f"{last.get(key)!r}"
            )
    if summary.get("rounds") != max(lines):
        c.fail(f"summary.json: rounds is {summary.get('rounds')!r}, metrics.jsonl has {max(lines)}")


def _check_ledger_entry(
    where: str,
    entry: Any,
    r: int,
    info: dict[str, Any],
    agree: list[Any],
    chain: ChainView,
    recorded: dict[int, dict[str, Any]],
    c: Check,
) -> None:
    if not isinstance(entry, dict):
        c.fail(f"{where}: no ledger entry")
        return
    rec = recorded.get(r, {})
    rejected = [x for g in rec.get("gateways", []) for x in g.get("rejected", [])]
    reasons: dict[str, int] = {}
    for x in rejected:
        reasons[x["reason"]] = reasons.get(x["reason"], 0) + 1
    txs = chain.txs.get(r, {})
    expected = {
        "finalised": info["status"] == "finalised",
        "votes": len(agree),
        "validators": len(chain.votes.get(r, [])),
        "accepted": sum(count for _, _, count in chain.commits.get(r, [])),
        "transactions": len(txs),
        "gas": sum(txs.values()),
        "rejected": len(rejected),
        "rejections": dict(sorted(reasons.items())),
    }
    for key, want in expected.items():
        if entry.get(key) != want:
            c.fail(f"{where}: ledger.{key} is {entry.get(key)!r}, the ledger says {want!r}")


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
