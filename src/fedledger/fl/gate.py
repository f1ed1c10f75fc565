"""The validator gate: a candidate that scores much worse than the current model gets no vote.

Each validator keeps the validation statistics of the current global model (the model the last
finalised round adopted; for round 1, the initial model) on its own validation split. After
scoring the round's candidate on the same split it compares the two scores, accuracy for every
task (:data:`GATE_METRIC`):

    candidate < previous − ledger.gate_margin   →   "fallback"

A validator that falls back votes for the round's base model (the previous global model)
instead of the candidate, with the same accepted set. When a quorum falls back the contract
finalises the base model again: the global model and the strategy's state stay as they were.
``gate_margin = 1`` turns the gate off (accuracy cannot fall by more than 1).

Everything a decision depends on is recorded in the round's ``gate`` entry of
``ledger/rounds.jsonl`` and committed by each vote's metrics digest (:func:`gate_evidence`),
so ``fedledger audit`` recomputes every decision and the round's outcome
(:func:`round_outcome`) from anchored statistics. These functions are the one definition the
validators and the audit share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fedledger.fl.tasks import EvalStats, Task

__all__ = [
    "CANDIDATE",
    "FALLBACK",
    "GATE_METRIC",
    "NO_QUORUM",
    "VOTE",
    "fallback_reason",
    "gate_decision",
    "gate_evidence",
    "gate_score",
    "round_outcome",
    "voted_evaluation",
]

GATE_METRIC = "accuracy"
"""The score the gate compares: accuracy (every task's metrics have it; for the
reconstruction task it is the detector's benign/attack accuracy at its threshold)."""

VOTE = "vote"
"""Decision: vote for the candidate."""
FALLBACK = "fallback"
"""Decision: vote for the round's base model instead."""

CANDIDATE = "candidate"
"""Outcome of a round that finalised the candidate."""
NO_QUORUM = "no quorum: the previous model stands"
"""Outcome of a round that was not finalised."""


def gate_score(task: Task, stats: EvalStats, context: dict[str, float]) -> float:
    """The gate's score of a model from its statistics on one validation split."""
    return float(task.metrics(stats, context)[GATE_METRIC])


def gate_decision(previous: float, candidate: float, margin: float) -> str:
    """:data:`FALLBACK` if the candidate's score is more than ``margin`` below the previous
    model's, else :data:`VOTE` (always with ``margin >= 1``: the gate is off).

    Examples
    --------
    >>> gate_decision(0.9, 0.85, 0.1), gate_decision(0.9, 0.7, 0.1), gate_decision(0.9, 0.0, 1)
    ('vote', 'fallback', 'vote')
    """
    if margin >= 1:
        return VOTE
    return FALLBACK if candidate < previous - margin else VOTE


def fallback_reason(previous: float, candidate: float, margin: float) -> str:
    """The recorded outcome of a round the gate sent back to the previous model."""
    return (
        f"fallback: validation {GATE_METRIC} fell from {previous:.4f} to {candidate:.4f} "
        f"(> margin {margin:g})"
    )


def _entries(gate: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(e["validator"]): e for e in gate["validators"]}


def gate_evidence(gate: Mapping[str, Any] | None, validator: int) -> dict[str, Any] | None:
    """What validator ``validator``'s metrics digest commits to of the round's gate entry
    (``None`` for a record without one): the margin, metric, candidate digest, the context of
    the previous model and the validator's own previous statistics, scores and decision."""
    if gate is None:
        return None
    return {
        "margin": gate["margin"],
        "metric": gate["metric"],
        "candidate": gate["candidate"],
        "context": gate["context"],
        **_entries(gate)[validator],
    }


def voted_evaluation(record: Mapping[str, Any], validator: int) -> tuple[EvalStats, dict[str, Any]]:
    """Statistics and context of the model validator ``validator`` voted for in the round
    ``record`` (a line of ``ledger/rounds.jsonl``): its evaluation of the candidate, or with a
    fallback decision its evaluation of the previous model."""
    gate = record.get("gate")
    if gate is not None:
        entry = _entries(gate)[validator]
        if entry["decision"] == FALLBACK:
            return EvalStats.from_json(entry["previous_stats"]), dict(gate["context"])
    vote = next(v for v in record["votes"] if int(v["validator"]) == validator)
    return EvalStats.from_json(vote["stats"]), dict(record["context"])


def round_outcome(
    task: Task, record: Mapping[str, Any], agreeing: Sequence[int], finalised: bool
) -> tuple[bool, str]:
    """``(gated, outcome)`` of the round ``record``, given the validators whose votes
    finalised it. A round is gated when the validators that carried it fell back; its outcome
    then gives the accuracy of the previous model and of the candidate pooled over their
    splits."""
    gate = record["gate"]
    if not finalised:
        return False, NO_QUORUM
    entries = _entries(gate)
    if not agreeing or not any(entries[v]["decision"] == FALLBACK for v in agreeing):
        return False, CANDIDATE
    votes = {int(v["validator"]): v for v in record["votes"]}
    previous = _pool([entries[v]["previous_stats"] for v in agreeing])
    candidate = _pool([votes[v]["stats"] for v in agreeing])
    return True, fallback_reason(
        gate_score(task, previous, gate["context"]),
        gate_score(task, candidate, record["context"]),
        float(gate["margin"]),
    )


def _pool(stats: Sequence[Mapping[str, Any]]) -> EvalStats:
    """The sum of recorded statistics of disjoint splits (at least one)."""
    pooled = EvalStats.from_json(dict(stats[0]))
    for other in stats[1:]:
        pooled = pooled + EvalStats.from_json(dict(other))
    return pooled
