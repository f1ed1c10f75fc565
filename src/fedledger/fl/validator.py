"""A validator: re-derives the round's model from the accepted updates, scores it, votes.

Every honest validator aggregates the same accepted updates with its own copy of the strategy,
so all of them produce bit-identical parameters, the same deterministic safetensors blob and
the same model digest (DESIGN.md, one round, step 4). Each evaluates the candidate on its own
validation split — a disjoint slice of the held-out data — and commits the digest of those
statistics with its vote; pooled, the slices' statistics give the whole split's metrics.
With the validator gate (:mod:`fedledger.fl.gate`) a validator whose candidate scores too far
below the current model votes for the current model instead, and its digest also commits to
the gate's evidence.

A simulated Byzantine validator (``ledger.byzantine``) votes for another model digest
(``wrong-model``) or for an accepted set that omits one committed gateway root
(``wrong-set``); honest validators outvote it and the chain records its vote.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import torch
from torch import nn

from fedledger.fl.params import ParamLayout
from fedledger.fl.tasks import EvalStats, Task
from fedledger.ledger.model_store import ModelStore, encode_tensors
from fedledger.ledger.records import rewards_digest
from fedledger.security.merkle import merkle_root
from fedledger.strategies.base import RoundContext, Strategy

__all__ = ["NO_QUOTE", "NO_REWARDS", "Validator", "accepted_digest", "metrics_digest"]

NO_REWARDS = rewards_digest([], [])  # the empty rewards vector (incentives off)
NO_QUOTE = bytes(32)  # quote digest when no enclave attests the aggregation


def accepted_digest(roots: list[bytes]) -> bytes:
    """The accepted set of a round: the Merkle root over the committed gateway roots, in
    gateway order. Anyone can recompute it from the chain's commit events."""
    return merkle_root(roots)


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def metrics_digest(
    round_number: int,
    validator: str,
    model: bytes,
    stats: EvalStats,
    context: dict[str, float],
    labels: dict[str, Any],
    gate: dict[str, Any] | None = None,
    flagged: list[int] | None = None,
) -> bytes:
    """sha256 of a validator's evaluation record (what its vote commits to): the statistics
    of the candidate, the detection context, the task's labels, from which the metrics follow,
    the validator's gate evidence (:func:`fedledger.fl.gate.gate_evidence`), if any, and the
    devices its screening strategy flagged, if it screens;
    ``model`` is the digest it voted for."""
    record: dict[str, Any] = {
        "round": round_number,
        "validator": validator,
        "model": model.hex(),
        "stats": stats.to_json(),
        "context": context,
        "labels": labels,
    }
    if gate is not None:
        record["gate"] = gate
    if flagged is not None:
        record["flagged"] = flagged
    return hashlib.sha256(canonical_json(record)).digest()


class Validator:
    """One validator node.

    Parameters
    ----------
    index
        Validator number (``validator-<index>``).
    x_val, y_val
        Its own validation split.
    byzantine
        ``None`` for an honest validator, else ``"wrong-model"`` or ``"wrong-set"``.
    """

    def __init__(
        self, index: int, x_val: torch.Tensor, y_val: torch.Tensor, byzantine: str | None
    ) -> None:
        self.index = index
        self.name = f"validator-{index}"
        self.x_val = x_val
        self.y_val = y_val
        self.byzantine = byzantine

    def derive(
        self,
        strategy: Strategy,
        base: torch.Tensor,
        updates: torch.Tensor,
        weights: torch.Tensor,
        layout: ParamLayout,
        store: ModelStore,
        context: RoundContext | None = None,
    ) -> tuple[torch.Tensor, Strategy, bytes]:
        """Aggregate with a private copy of ``strategy`` and store the blob; return
        ``(params, strategy copy, model digest of the candidate)``. The copy's
        :attr:`~fedledger.strategies.base.Strategy.flagged` names the rows it screened out."""
        own = copy.deepcopy(strategy)
        own.flagged = ()
        params = own.aggregate(base, updates, weights, context) if len(updates) else base.clone()
        return params, own, self.publish(params, layout, store)

    def publish(self, params: torch.Tensor, layout: ParamLayout, store: ModelStore) -> bytes:
        """Store the candidate's blob; return its model digest."""
        return bytes.fromhex(store.put(encode_tensors(layout.unflatten(params))))

    def vote_model(self, model: bytes) -> bytes:
        """The model digest this validator votes for when it means to vote for ``model``."""
        if self.byzantine == "wrong-model":
            # a blob nobody stored, different for each Byzantine validator (they do not collude)
            model = hashlib.sha256(f"byzantine/{self.index}/".encode() + model).digest()
        return model

    def accepted_for(self, gateway_roots: list[bytes]) -> bytes:
        """The accepted-set digest this validator votes for."""
        roots = gateway_roots
        if self.byzantine == "wrong-set" and roots:
            roots = roots[:-1]  # a set that was not what the gateways committed
        return accepted_digest(roots)

    def evaluate(
        self,
        params: torch.Tensor,
        model: nn.Module,
        layout: ParamLayout,
        task: Task,
        context: dict[str, float],
    ) -> EvalStats:
        """Statistics of the model ``params`` on this validator's split."""
        layout.load_into(model, params)
        model.eval()
        return task.eval_stats(model, self.x_val, self.y_val, context)
