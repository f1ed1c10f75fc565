"""Check of the validator gate: every decision follows from anchored scores and the margin.

Each vote's metrics digest commits to the validator's statistics of the candidate and, through
its gate evidence, to its statistics of the previous model and its decision (the ``votes``
check verifies that). This check recomputes, round by round:

- each validator's two scores from those statistics, and its decision from the scores and
  config.toml's ``ledger.gate_margin``;
- that an honest validator voted as it decided: for the base model if it fell back, else for
  the candidate;
- that its statistics of the previous model are those it recorded when that model was the
  candidate of the round that adopted it (those of the initial model are not anchored earlier);
- the round's outcome, and that a fallback round finalised the base model.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fedledger.audit.checks.common import (
    ChainView,
    brief,
    guarded,
    round_records,
    validator_names,
)
from fedledger.audit.report import Check
from fedledger.config import load_config
from fedledger.fl.gate import FALLBACK, GATE_METRIC, gate_decision, gate_score, round_outcome
from fedledger.fl.ledger_records import LedgerRecords
from fedledger.fl.tasks import EvalStats, task_from_labels
from fedledger.ledger.model_store import ModelStore

__all__ = ["check_gate"]


def _close(got: Any, want: float) -> bool:
    return isinstance(got, int | float) and math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-15)


def check_gate(run_dir: Path, records: LedgerRecords, chain: ChainView) -> Check:
    """Every round's ``gate`` entry in ledger/rounds.jsonl against the anchored evaluations,
    the margin in config.toml and the chain's votes (see the module docstring)."""

    def body(c: Check) -> None:
        margin = load_config(run_dir / "config.toml").ledger.gate_margin
        recorded = round_records(records, Check("", ""))  # the rounds check names bad lines
        if not any("gate" in rec for rec in recorded.values()):
            c.notes.append("ledger/rounds.jsonl records no validator gate (a run from before it)")
            return
        c.notes.append(f"margin {margin:g} on validation {GATE_METRIC}")
        store = ModelStore(records.store_dir)
        names = validator_names(records.deployment())
        last: dict[str, Any] | None = None  # the round that adopted the current model
        for r, info in sorted(chain.rounds.items()):
            rec = recorded.get(r)
            if rec is None:
                continue  # the rounds check names it
            gate = rec.get("gate")
            if not isinstance(gate, dict):
                c.fail(f"round {r}: ledger/rounds.jsonl records no gate decisions")
                continue
            c.checked += 1
            _check_round(r, info, rec, gate, margin, chain, names, last, store, c)
            if info["status"] != "finalised":
                continue
            if info["model"].hex() == gate["candidate"]:
                last = rec
            elif info["model"] != info["base"]:
                last = None  # neither the candidate nor a fallback: the rounds check says so

    return guarded(
        Check(
            "gate",
            "every validator's gate decision follows from its anchored scores and the margin; "
            "a fallback round finalised the base model",
        ),
        body,
    )


def _check_round(
    r: int,
    info: dict[str, Any],
    rec: dict[str, Any],
    gate: dict[str, Any],
    margin: float,
    chain: ChainView,
    names: dict[bytes, str],
    last: dict[str, Any] | None,
    store: ModelStore,
    c: Check,
) -> None:
    if not _close(gate["margin"], margin):
        c.fail(
            f"round {r}: gate margin {gate['margin']!r} is not config.toml's "
            f"ledger.gate_margin {margin!r}"
        )
    if gate["metric"] != GATE_METRIC:
        c.fail(f"round {r}: the gate compared {gate['metric']!r}, not {GATE_METRIC!r}")
    task = task_from_labels(rec["labels"])
    votes = {int(v["validator"]): v for v in rec["votes"]}
    entries = {int(e["validator"]): e for e in gate["validators"]}
    if set(entries) != set(votes):
        c.fail(
            f"round {r}: the gate records validators {sorted(entries)}, the votes {sorted(votes)}"
        )
    base, candidate = info["base"], bytes.fromhex(gate["candidate"])
    if candidate != base and not store.has(candidate.hex()):
        c.fail(f"round {r}: the candidate {candidate.hex()} is not in the model store")
    index = {f"validator-{i}": i for i in votes}  # validator names to indices

    def of(vid: bytes) -> int:
        return index.get(names.get(vid, ""), -1)

    on_chain = {of(vote[0]): vote[1] for vote in chain.votes.get(r, [])}
    previous_of = {} if last is None else {int(v["validator"]): v for v in last["votes"]}
    if last is not None and gate["context"] != last["context"]:
        c.fail(
            f"round {r}: the gate's context of the previous model is not the one recorded when "
            f"round {last['round']} adopted it"
        )
    for i, e in sorted(entries.items()):
        vote = votes.get(i)
        if vote is None:
            continue
        name = f"validator-{i}"
        before = gate_score(task, EvalStats.from_json(e["previous_stats"]), gate["context"])
        after = gate_score(task, EvalStats.from_json(vote["stats"]), rec["context"])
        for what, got, want in (
            ("previous", e["previous"], before),
            ("candidate", e["candidate"], after),
        ):
            if not _close(got, want):
                c.fail(
                    f"round {r}: {name}'s {what} score {got!r} is not the {want!r} its "
                    f"recorded statistics give"
                )
        decision = gate_decision(before, after, margin)
        if e["decision"] != decision:
            c.fail(
                f"round {r}: {name}'s gate decision {e['decision']!r} does not follow from its "
                f"scores (previous {before:.4f}, candidate {after:.4f}, margin {margin:g}); "
                f"it is {decision!r}"
            )
        voted = on_chain.get(i)
        if vote.get("byzantine") is None and voted is not None:
            want_model, what = (
                (base, "base model") if decision == FALLBACK else (candidate, "candidate")
            )
            if voted != want_model:
                c.fail(
                    f"round {r}: {name} voted for {brief(voted)}, but its gate decision "
                    f"{decision!r} means the {what} {brief(want_model)}"
                )
        prior = previous_of.get(i)
        if prior is not None and prior["stats"] != e["previous_stats"]:
            c.fail(
                f"round {r}: {name}'s statistics of the previous model are not its evaluation "
                f"of it in round {last['round'] if last else '?'}, which adopted it"
            )
    if last is None:
        c.notes.append(
            f"round {r}: the scores of the initial model are anchored by this round only"
        )
    finalised = info["status"] == "finalised"
    agreeing = [of(v[0]) for v in chain.agreeing(r) if of(v[0]) >= 0]
    gated, outcome = round_outcome(task, rec, agreeing, finalised)
    if gate.get("outcome") != outcome:
        c.fail(
            f"round {r}: gate outcome {gate.get('outcome')!r}, the anchored scores and the "
            f"chain's votes give {outcome!r}"
        )
    if gated:
        c.notes.append(f"round {r}: {outcome}")
        if info["model"] != base:
            c.fail(
                f"round {r}: the validators that finalised it fell back, but the finalised model "
                f"{brief(info['model'])} is not the base {brief(base)}"
            )
