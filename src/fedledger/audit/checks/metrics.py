"""Checks of the reported metrics against the anchored evaluations and the chain."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

from fedledger.audit.checks.common import ChainView, guarded, round_records, validator_names
from fedledger.audit.report import Check
from fedledger.fl.detection import detection_counts
from fedledger.fl.gate import voted_evaluation
from fedledger.fl.ledger_records import LedgerRecords
from fedledger.fl.tasks import EvalStats, task_from_labels

__all__ = ["check_metrics"]


_UNANCHORED = {
    "round",
    "seconds",
    "clients",
    "timings",
    "ledger",
    "secure",
    "screen",
    "contribution",
    "rewards",
}
"""Keys not compared with the validators' evaluations (``ledger``, ``secure``, ``screen`` and
``rewards`` are compared with the chain and the round records; ``contribution`` scores are
anchored only through the rewards digest they lead to)."""
_ATTACK_METRICS = ("backdoor_success",)
"""Metrics the simulation measures on the finalised model for a simulated attack (the
backdoor's success rate on triggered test rows); the validators do not evaluate them."""
_RECORD_ONLY = ("rejected", "evidence")
"""Keys of a round record's ``secure`` entry that ``metrics.jsonl`` leaves out."""


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(got, int | float):
        return math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-15)
    if isinstance(want, dict) and isinstance(got, dict):
        return set(got) == set(want) and all(_same(got[k], want[k]) for k in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want, strict=True))
    return bool(got == want)


def check_metrics(run_dir: Path, records: LedgerRecords, chain: ChainView) -> Check:
    """metrics.jsonl equals what the agreeing validators' anchored evaluations give, its
    ``ledger`` entries equal the chain's and its ``secure`` entries the round records'."""

    def body(c: Check) -> None:
        recorded = round_records(records, Check("", ""))
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
        attack = _attack(run_dir)
        unanchored = [k for k in _ATTACK_METRICS if any(k in obj for _, obj in lines.values())]
        if unanchored:
            c.notes.append(
                f"{', '.join(unanchored)}: measured by the simulation on the finalised models, "
                f"not anchored"
            )
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
            _check_secure_entry(where, obj, r, recorded.get(r), c)
            _check_screen_entry(where, obj, r, recorded.get(r), attack, c)
            _check_rewards_entry(where, obj, r, recorded.get(r), c)
            if info["status"] == "finalised":
                rec = recorded[r]
                names = {f"validator-{v['validator']}": v for v in rec["votes"]}
                ids = validator_names(records.deployment())
                pooled: EvalStats | None = None
                context: dict[str, Any] = rec["context"]
                for vote in agree:
                    # its evaluation of the candidate, or of the base model if it fell back
                    index = int(names[ids[vote[0]]]["validator"])
                    stats, context = voted_evaluation(rec, index)
                    pooled = stats if pooled is None else pooled + stats
                if pooled is None:
                    c.fail(f"round {r}: no agreeing evaluation to derive metrics from")
                    continue
                standing = task_from_labels(rec["labels"]).metrics(pooled, context)
            if standing is None:
                c.notes.append(f"round {r}: metrics of the initial model are not anchored")
                continue
            shown = {
                k: v for k, v in obj.items() if k not in _UNANCHORED and k not in _ATTACK_METRICS
            }
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


def _attack(run_dir: Path) -> tuple[frozenset[int], int]:
    """The malicious devices (``devices.json``) and the round their attack starts."""
    try:
        devices = json.loads((run_dir / "devices.json").read_text())["devices"]
        config = tomllib.loads((run_dir / "config.toml").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return frozenset(), 1
    malicious = frozenset(i for i, d in enumerate(devices) if d.get("role") == "malicious")
    start = int(config.get("attack", {}).get("start_round", 1))
    return malicious, start


def _check_screen_entry(
    where: str,
    obj: dict[str, Any],
    r: int,
    rec: dict[str, Any] | None,
    attack: tuple[frozenset[int], int],
    c: Check,
) -> None:
    """The line's ``screen`` entry names the devices the round record (and so every vote's
    metrics digest) says the strategy flagged, and its detection counts follow from them and
    ``devices.json``'s malicious devices."""
    shown = obj.get("screen")
    screen = None if rec is None else rec.get("screen")
    if shown is None and screen is None:
        return
    if not isinstance(shown, dict) or not isinstance(screen, dict):
        c.fail(f"{where}: the screen entry and ledger/rounds.jsonl's round {r} disagree")
        return
    if shown.get("flagged") != screen.get("flagged"):
        c.fail(
            f"{where}: screen.flagged is {shown.get('flagged')!r}, ledger/rounds.jsonl (and the "
            f"votes' metrics digests) say {screen.get('flagged')!r}"
        )
        return
    malicious, start = attack
    want: dict[str, Any] = {"flagged": screen["flagged"]}
    if malicious and r >= start:
        want.update(detection_counts(screen["devices"], screen["flagged"], malicious))
    if not _same(shown, want):
        c.fail(f"{where}: screen is {shown!r}, the flagged devices and devices.json give {want!r}")


def _check_rewards_entry(
    where: str, obj: dict[str, Any], r: int, rec: dict[str, Any] | None, c: Check
) -> None:
    """The line's ``rewards`` entry pays and takes what the round record says was settled
    (which the ``token`` check holds against the chain)."""
    shown = obj.get("rewards")
    recorded = None if rec is None else rec.get("rewards")
    if shown is None and recorded is None:
        return
    if not isinstance(shown, dict) or not isinstance(recorded, dict):
        c.fail(f"{where}: the rewards entry and ledger/rounds.jsonl's round {r} disagree")
        return
    for key in ("settled", "paid", "penalties", "excluded"):
        if shown.get(key) != recorded.get(key):
            c.fail(
                f"{where}: rewards.{key} is {shown.get(key)!r}, ledger/rounds.jsonl says "
                f"{recorded.get(key)!r}"
            )
    if "scores" in recorded:  # what the rewards follow from
        contribution = obj.get("contribution")
        scores = contribution.get("scores") if isinstance(contribution, dict) else None
        if scores != recorded["scores"]:
            c.fail(f"{where}: the contribution scores are not ledger/rounds.jsonl's round {r}'s")
        if shown.get("free_riders") != recorded.get("free_riders"):
            c.fail(
                f"{where}: rewards.free_riders is {shown.get('free_riders')!r}, "
                f"ledger/rounds.jsonl says {recorded.get('free_riders')!r}"
            )


def _check_secure_entry(
    where: str, obj: dict[str, Any], r: int, rec: dict[str, Any] | None, c: Check
) -> None:
    """The line's ``secure`` entry is the round record's, without its rejected inputs and
    evidence (those stay in ``ledger/rounds.jsonl``; the ``secure`` check verifies them)."""
    shown = obj.get("secure")
    secure = None if rec is None else rec.get("secure")
    if shown is None and secure is None:
        return
    if secure is None:
        c.fail(
            f"{where}: a secure entry, but ledger/rounds.jsonl records no secure aggregation "
            f"for round {r}"
        )
        return
    if shown is None:
        c.fail(
            f"{where}: no secure entry, but ledger/rounds.jsonl records secure aggregation "
            f"({secure.get('mode')!r}) for round {r}"
        )
        return
    if not isinstance(shown, dict) or not isinstance(secure, dict):
        c.fail(
            f"{where}: the secure entry (or round {r}'s in ledger/rounds.jsonl) is not an object"
        )
        return
    want = {k: v for k, v in secure.items() if k not in _RECORD_ONLY}
    for key in sorted(set(shown) | set(want)):
        if not _same(shown.get(key), want.get(key)):
            c.fail(
                f"{where}: secure.{key} is {shown.get(key)!r}, ledger/rounds.jsonl says "
                f"{want.get(key)!r}"
            )


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
    finalised = info["status"] == "finalised"
    gate = rec.get("gate")
    expected = {
        "finalised": finalised,
        # the quorum finalised the base model again although the candidate differed from it
        "gated": finalised
        and info["model"] == info["base"]
        and isinstance(gate, dict)
        and gate.get("candidate") != info["base"].hex(),
        "votes": len(agree),
        "validators": len(chain.votes.get(r, [])),
        "accepted": sum(count for _, _, count in chain.commits.get(r, [])),
        "transactions": len(txs),
        "gas": sum(txs.values()),
        "rejected": len(rejected),
        "rejections": dict(sorted(reasons.items())),
    }
    for key, want in expected.items():
        if entry.get(key, False if key == "gated" else None) != want:  # older runs: no "gated"
            c.fail(f"{where}: ledger.{key} is {entry.get(key)!r}, the ledger says {want!r}")
