"""What each device contributed to a round, and what it earns for it: the coalition game on
the validators' valuation rows of held-out data (scored with :mod:`fedledger.incentives`),
free-rider detection, and the round's settlement in the run's
:class:`~fedledger.incentives.RewardBook`.

Whoever sees the devices' updates scores them. On plain updates that is the simulation
(:func:`round_incentives`), for the plain engine after it aggregated and for the ledger
protocol while the validators derive the candidate (so that the rewards digest is part of
their vote). Under ``secure_aggregation = "enclave"`` only the enclave opens the updates: it
scores them inside and signs the scores in its transcript, and :func:`enclave_incentives`
settles the round from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from fedledger.fl import probe
from fedledger.fl.detection import detection_counts
from fedledger.incentives import RoundGame, Settlement, assess_round

if TYPE_CHECKING:
    from fedledger.fl.engine import Simulation
    from fedledger.fl.secure.base import SecureOutcome

__all__ = ["RoundIncentives", "enclave_incentives", "round_incentives", "valuation_quality"]


def valuation_quality(sim: Simulation, params: torch.Tensor) -> float:
    """:func:`fedledger.fl.probe.valuation_quality` of ``params`` on the validators'
    valuation rows."""
    x, y = sim.valuation_data()
    return probe.valuation_quality(sim.model, sim.layout, sim.task, params, x, y)


@dataclass
class RoundIncentives:
    """One round's ``contribution`` metrics entry and :class:`Settlement`, and (under the
    free-rider attack) how well the free riders were found."""

    contribution: dict[str, Any]
    settlement: Settlement
    detection: dict[str, Any] | None
    aggregated: list[int]
    """The devices whose update went into the round's aggregate."""

    def metrics(self) -> dict[str, Any]:
        """The round's ``contribution`` and ``rewards`` metrics entries."""
        rewards: dict[str, Any] = dict(self.settlement.to_json())
        if self.detection is not None:
            rewards["detection"] = self.detection
        return {"contribution": self.contribution, "rewards": rewards}


def round_incentives(
    sim: Simulation,
    round_number: int,
    base: torch.Tensor,
    candidate: torch.Tensor,
    row_ids: list[int],
    updates: torch.Tensor,
    weights: torch.Tensor,
    devices: list[int],
    aggregated: list[int],
    step: torch.Tensor | None,
) -> RoundIncentives:
    """Score, screen for free riders and settle round ``round_number`` (nothing is booked).

    Parameters
    ----------
    base, candidate
        The round's starting global parameters and the aggregate it produced.
    row_ids, updates, weights
        The device of each aggregated row (``-1``: not a device's own envelope, left out),
        the rows and their sample counts.
    devices
        The round's selected devices.
    aggregated
        The devices whose update went into ``candidate``.
    step
        The last global step ``θ_t − θ_{t−1}`` (``None`` in the first round).
    """
    own = [k for k, d in enumerate(row_ids) if d >= 0]
    order = [row_ids[k] for k in own]

    def quality(params: torch.Tensor) -> float:
        return valuation_quality(sim, params)

    game = RoundGame.of_round(
        base, updates[own], weights[own], candidate, quality, sim.train_cfg.seed, round_number
    )
    found = assess_round(sim.incentives, game, step)
    sim.layout.load_into(sim.model, sim.global_params)
    scores = {d: float(v) for d, v in zip(order, found.scores, strict=True)}
    riders = {order[k]: kind for k, kind in found.free_riders.items()}
    return _settle(sim, round_number, devices, aggregated, scores, riders, found.evaluations)


def enclave_incentives(
    sim: Simulation, round_number: int, outcome: SecureOutcome, devices: list[int]
) -> RoundIncentives:
    """Settle round ``round_number`` from the scores and free riders the enclave signed in
    its transcript (``outcome``); the devices of its accepted, unflagged inputs are the
    aggregated ones."""
    assert outcome.contributions is not None
    flagged = set(outcome.flagged)
    aggregated = [d for d in outcome.contributions if d not in flagged]
    return _settle(
        sim,
        round_number,
        devices,
        aggregated,
        outcome.contributions,
        outcome.free_riders,
        outcome.evaluations,
    )


def _settle(
    sim: Simulation,
    round_number: int,
    devices: list[int],
    aggregated: list[int],
    scores: dict[int, float],
    riders: dict[int, str],
    evaluations: int,
) -> RoundIncentives:
    assert sim.book is not None
    settlement = sim.book.propose(devices, aggregated, scores, riders)
    detection = None
    attack = sim.attack
    if attack is not None and attack.name == "free_rider" and round_number >= sim.attack_start:
        detection = detection_counts(devices, riders, sim.malicious)
    contribution = {
        "method": sim.incentives,
        "scores": {str(d): round(v, 9) for d, v in sorted(scores.items())},
        "evaluations": evaluations,
    }
    return RoundIncentives(contribution, settlement, detection, sorted(set(aggregated)))
