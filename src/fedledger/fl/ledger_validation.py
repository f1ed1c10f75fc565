"""The validators' side of a ledger round: derive, score, gate, vote and record.

Helpers of :class:`~fedledger.fl.ledger_protocol.LedgerProtocol` (DESIGN.md, one round,
steps 4–5): each validator's validation split; its candidate, derived from the accepted
updates (or, with a secure-aggregation mode, published from the protected aggregate), stored
and scored on its split; its statistics of the current global model, which the gate
(:mod:`~fedledger.fl.gate`) compares the candidate with; the devices its strategy flagged;
its quote of the enclave; the ballots the validators cast; and the round's record of the
gateways' commits and the votes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fedledger.fl.engine import Simulation
from fedledger.fl.gate import FALLBACK, GATE_METRIC, gate_decision, gate_evidence, gate_score
from fedledger.fl.secure.base import round_nonce
from fedledger.fl.tasks import EvalStats
from fedledger.fl.validator import (
    NO_QUOTE,
    NO_REWARDS,
    Validator,
    accepted_digest,
    metrics_digest,
)
from fedledger.ledger.model_store import ModelStore
from fedledger.security.enclave.quote import Quote
from fedledger.strategies.base import RoundContext, Strategy

__all__ = [
    "Derived",
    "Standing",
    "attest",
    "cast_ballots",
    "derive",
    "gate_entry",
    "pooled_stats",
    "publish",
    "round_record",
    "score_standing",
    "screen_flags",
    "split_validation",
]


@dataclass
class Derived:
    """One validator's candidate: parameters, its strategy copy, model digest and scores."""

    validator: Validator
    params: torch.Tensor
    strategy: Strategy
    model: bytes
    stats: EvalStats


@dataclass
class Standing:
    """The current global model's evaluation context and each validator's statistics of it
    (what the gate compares a candidate with)."""

    model: bytes
    context: dict[str, float]
    stats: list[EvalStats]


def split_validation(n_rows: int, n_validators: int, seed: int) -> list[np.ndarray]:
    """Each validator's validation split: disjoint, seeded slices of the held-out rows that
    together cover all of them (so pooled statistics equal the whole split's)."""
    order = np.random.default_rng([seed, 0, 2]).permutation(n_rows)
    return [np.sort(part) for part in np.array_split(order, n_validators)]


def derive(
    validators: list[Validator],
    store: ModelStore,
    sim: Simulation,
    updates: torch.Tensor,
    weights: torch.Tensor,
    round_context: RoundContext,
) -> tuple[list[Derived], dict[str, float]]:
    """Every validator derives, stores and scores the candidate from ``updates`` (with no
    accepted update, the candidate is the current model and the strategy state stays)."""
    candidates = [
        v.derive(
            sim.strategy,
            sim.global_params,
            updates,
            weights,
            sim.layout,
            store,
            round_context,
        )
        for v in validators
    ]
    # the detection context (e.g. an anomaly threshold) comes from the devices' reports
    sim.layout.load_into(sim.model, candidates[0][0])
    sim.model.eval()
    context = sim.task.context(sim.model, sim.eval_data)
    derived = []
    for v, (params, strategy, model) in zip(validators, candidates, strict=True):
        stats = v.evaluate(params, sim.model, sim.layout, sim.task, context)
        derived.append(Derived(v, params, strategy, model, stats))
    return derived, context


def publish(
    validators: list[Validator],
    store: ModelStore,
    sim: Simulation,
    params: torch.Tensor,
    strategy: Strategy,
) -> tuple[list[Derived], dict[str, float]]:
    """With a secure-aggregation mode: every validator takes the protected aggregate (it
    checked the enclave's transcript or recomputed the unmasking), stores, scores it."""
    sim.layout.load_into(sim.model, params)
    sim.model.eval()
    context = sim.task.context(sim.model, sim.eval_data)
    derived = []
    for v in validators:
        model = v.publish(params, sim.layout, store)
        stats = v.evaluate(params, sim.model, sim.layout, sim.task, context)
        derived.append(Derived(v, params, strategy, model, stats))
    return derived, context


def score_standing(
    validators: list[Validator], sim: Simulation, base: torch.Tensor, model: bytes
) -> Standing:
    """Each validator's statistics of the current global model ``base`` (digest ``model``)."""
    sim.layout.load_into(sim.model, base)
    sim.model.eval()
    context = sim.task.context(sim.model, sim.eval_data)
    stats = [v.evaluate(base, sim.model, sim.layout, sim.task, context) for v in validators]
    return Standing(model, context, stats)


def gate_entry(
    sim: Simulation,
    derived: list[Derived],
    context: dict[str, float],
    standing: Standing,
    margin: float,
) -> dict[str, Any]:
    """The round's ``gate`` entry (its ``outcome`` follows the vote): each validator's
    score of the current model and of the candidate on its split, and its decision."""
    entries = []
    for d in derived:
        previous = standing.stats[d.validator.index]
        before = gate_score(sim.task, previous, standing.context)
        after = gate_score(sim.task, d.stats, context)
        entries.append(
            {
                "validator": d.validator.index,
                "previous": before,
                "candidate": after,
                "decision": gate_decision(before, after, margin),
                "previous_stats": previous.to_json(),
            }
        )
    return {
        "margin": margin,
        "metric": GATE_METRIC,
        "candidate": derived[0].model.hex(),
        "context": standing.context,
        "validators": entries,
    }


def pooled_stats(stats: list[EvalStats]) -> EvalStats:
    """Statistics of the union of disjoint validation splits."""
    pooled = stats[0]
    for other in stats[1:]:
        pooled = pooled + other
    return pooled


def attest(validators: list[Validator], sim: Simulation, seed: int, r: int) -> list[bytes | None]:
    """Each validator's verified quote of the enclave for this round (its own nonce), or
    ``None`` where no enclave takes part."""
    if sim.secure is None:
        return [None for _ in validators]
    return [sim.secure.attest(round_nonce(seed, r, v.name)) for v in validators]


def screen_flags(
    sim: Simulation,
    derived: list[Derived],
    row_ids: list[int],
    enclave_flagged: list[int] | None,
) -> dict[int, list[int] | None]:
    """The devices each validator's strategy flagged, by validator index (with secure
    aggregation ``enclave_flagged``, the enclave's; ``None`` when the strategy screens none).
    ``row_ids`` is the device of each aggregated row (``-1``: not a device's own envelope)."""
    flags: dict[int, list[int] | None] = {}
    for d in derived:
        if not sim.strategy.screens:
            flags[d.validator.index] = None
        elif enclave_flagged is not None:
            flags[d.validator.index] = sorted(enclave_flagged)
        else:
            flags[d.validator.index] = sorted(
                row_ids[i] for i in d.strategy.flagged if row_ids[i] >= 0
            )
    return flags


def cast_ballots(
    r: int,
    derived: list[Derived],
    quotes: list[bytes | None],
    base: bytes,
    gate: dict[str, Any],
    context: dict[str, float],
    labels: dict[str, Any],
    flags: dict[int, list[int] | None],
    roots: list[bytes],
    rewards: bytes = NO_REWARDS,
) -> list[dict[str, Any]]:
    """Each validator's ballot: the model it votes for (the base model ``base`` where its
    gate decided to fall back), the accepted set, the round's rewards digest (none paid where
    it falls back), and the digests of its metrics and quote.

    Parameters
    ----------
    r
        The round.
    derived, quotes
        Each validator's candidate and its quote of the enclave (``None``: no enclave).
    base
        Digest of the round's base model (the current global model).
    gate, context, labels, flags
        The round's gate entry, evaluation context, task labels and flagged devices, which
        each validator's metrics digest commits to.
    roots
        The committed gateway roots, in gateway order.
    rewards
        Digest of the round's rewards vector (:func:`fedledger.ledger.records.rewards_digest`).
    """
    ballots = []
    for d, q in zip(derived, quotes, strict=True):
        fallback = gate["validators"][d.validator.index]["decision"] == FALLBACK
        model = d.validator.vote_model(base if fallback else d.model)
        evidence = gate_evidence(gate, d.validator.index)
        digest = metrics_digest(
            r,
            d.validator.name,
            model,
            d.stats,
            context,
            labels,
            evidence,
            flags[d.validator.index],
        )
        ballots.append(
            {
                "validator": d.validator.index,
                "model": model.hex(),
                "accepted": d.validator.accepted_for(roots).hex(),
                "rewards": (NO_REWARDS if fallback else rewards).hex(),
                "metrics": digest.hex(),
                "quote": (Quote.decode(q).digest() if q else NO_QUOTE).hex(),
            }
        )
    return ballots


def round_record(
    r: int,
    config_digest: bytes,
    batches: list[dict[str, Any]],
    ballots: list[dict[str, Any]],
    derived: list[Derived],
    context: dict[str, float],
    outcome: dict[str, Any],
    receipts: list[dict[str, Any]],
) -> dict[str, Any]:
    """The round's ``ledger/rounds.jsonl`` record: the gateways' commits, the votes and the
    outcome on chain (the protocol adds the labels, gate, screen and secure entries)."""
    finalised = outcome["status"] == "finalised"
    return {
        "round": r,
        "base": outcome["base"],
        "config": config_digest.hex(),
        "gateways": [
            {
                "gateway": b["gateway"],
                "root": b["root"],
                "count": len(b["accepted"]),
                "committed": bool(b["accepted"]),
                "rejected": b["rejected"],
            }
            for b in batches
        ],
        "accepted": accepted_digest(
            [bytes.fromhex(b["root"]) for b in batches if b["accepted"]]
        ).hex(),
        "votes": [
            {
                "validator": b["validator"],
                "model": b["model"],
                "accepted": b["accepted"],
                "metrics": b["metrics"],
                "byzantine": d.validator.byzantine,
                "stats": d.stats.to_json(),
            }
            for b, d in zip(ballots, derived, strict=True)
        ],
        "context": context,
        "status": outcome["status"],
        "model": outcome["model"] if finalised else None,
        "transactions": [x["tx"] for x in receipts],
        "gas": sum(int(x["gas"]) for x in receipts),
    }
