"""One round as data: the devices' updates, the round's result, its random streams, and the
interface of a driver that runs rounds its own way (the ledger protocol)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

if TYPE_CHECKING:
    from fedledger.fl.engine import Simulation
    from fedledger.fl.secure.base import SecureOutcome

__all__ = ["LocalUpdates", "RoundDriver", "RoundResult", "round_rng", "secure_summary"]


def round_rng(seed: int, round_number: int, *stream: int) -> np.random.Generator:
    """The generator for one purpose in one round: ``default_rng([seed, round, *stream])``.

    Streams: ``0`` samples devices; ``1, d`` shuffles device ``d``'s rows; ``12`` orders
    GTG-Shapley's permutations. A resumed run, or an outside reference loop, draws exactly the
    same numbers.
    """
    return np.random.default_rng([seed, round_number, *stream])


class RoundDriver(Protocol):
    """Runs a round of a simulation its own way (the ledger protocol does)."""

    def run_round(self, sim: Simulation, round_number: int) -> RoundResult: ...

    def close(self) -> None: ...


@dataclass
class LocalUpdates:
    """What the devices of one round produced, before aggregation.

    Attributes
    ----------
    devices
        The sampled devices, sorted.
    order
        Device index of each row of ``updates`` (the trainer's order).
    updates
        ``[K, P]`` deltas ``local − global``.
    weights
        ``[K]`` sample counts, in ``order``.
    seconds
        Wall time of sampling and training.
    sybils
        Copies of malicious updates sent under forged identities (the Sybil attack): the
        device each copies, and the row.
    """

    devices: list[int]
    order: list[int]
    updates: torch.Tensor
    weights: torch.Tensor
    seconds: float
    sybils: list[tuple[int, torch.Tensor]] = field(default_factory=list)

    def with_sybils(self) -> LocalUpdates:
        """The rows with the Sybil clones appended (device ``-1``: nobody registered them),
        each weighted like the device it copies — what an aggregator that checks no identity
        receives."""
        if not self.sybils:
            return self
        weight = {d: self.weights[k] for k, d in enumerate(self.order)}
        return LocalUpdates(
            devices=self.devices,
            order=[*self.order, *(-1 for _ in self.sybils)],
            updates=torch.cat([self.updates, torch.stack([row for _, row in self.sybils])]),
            weights=torch.cat([self.weights, torch.stack([weight[d] for d, _ in self.sybils])]),
            seconds=self.seconds,
        )

    def without(self, left_out: frozenset[int]) -> LocalUpdates:
        """The round as if the devices ``left_out`` had not taken part (their rows, clones and
        place among the round's devices dropped)."""
        keep = [k for k, d in enumerate(self.order) if d not in left_out]
        return LocalUpdates(
            devices=[d for d in self.devices if d not in left_out],
            order=[self.order[k] for k in keep],
            updates=self.updates[keep],
            weights=self.weights[keep],
            seconds=self.seconds,
            sybils=[(d, row) for d, row in self.sybils if d not in left_out],
        )


@dataclass
class RoundResult:
    """What one round produced."""

    round: int
    global_params: torch.Tensor
    devices: list[int]
    metrics: dict[str, Any]
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


def secure_summary(mode: str, outcome: SecureOutcome) -> dict[str, Any]:
    """The per-round ``secure`` entry of ``metrics.jsonl``: mode, counts, refusal reasons."""
    reasons: dict[str, int] = {}
    for reason in outcome.rejected.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    small = {k: v for k, v in outcome.evidence.items() if isinstance(v, int)}
    return {
        "mode": mode,
        "aggregated": len(outcome.accepted),
        "refused": dict(sorted(reasons.items())),
        **small,
    }
