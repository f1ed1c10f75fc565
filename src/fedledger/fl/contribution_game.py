"""What each device contributed to a round, and what it earns for it: the coalition game on
the validators' valuation rows of held-out data (scored with :mod:`fedledger.incentives`),
free-rider detection, and the round's settlement in the run's
:class:`~fedledger.incentives.RewardBook`.

The same function serves the plain engine (after it aggregated) and the ledger protocol
(while the validators derive the candidate, so that its rewards digest is part of their
vote): both pass the round's starting model, the candidate and the aggregated rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fedledger.fl.detection import detection_counts
from fedledger.fl.round_data import round_rng
from fedledger.incentives import RoundGame, Settlement, contribution_scores, detect_free_riders

if TYPE_CHECKING:
    from fedledger.fl.engine import Simulation

__all__ = ["LOSS_CAP", "RoundIncentives", "round_incentives", "valuation_quality"]

LOSS_CAP = 1e6
"""The largest root loss a contribution game counts (see :func:`valuation_quality`)."""


def valuation_quality(sim: Simulation, params: torch.Tensor) -> float:
    """Minus the mean loss of ``params`` on the validators' valuation rows (higher is better),
    the loss capped at :data:`LOSS_CAP` (also for a non-finite loss, so that a coalition
    holding a diverging update still has a value to subtract)."""
    x, y = sim.valuation_data()
    sim.layout.load_into(sim.model, params)
    sim.model.eval()
    with torch.no_grad():
        loss = float(sim.task.per_sample_loss(sim.model(x), x, y).to(torch.float64).mean())
    return -min(loss, LOSS_CAP) if np.isfinite(loss) else -LOSS_CAP


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
    assert sim.book is not None
    own = [k for k, d in enumerate(row_ids) if d >= 0]
    order = [row_ids[k] for k in own]
    rows, counts = updates[own], weights[own]

    def quality(params: torch.Tensor) -> float:
        return valuation_quality(sim, params)

    game = RoundGame(
        base=base,
        updates=rows,
        weights=counts,
        aggregate=candidate - base,
        quality=quality,
        rng=round_rng(sim.train_cfg.seed, round_number, 12),
    )
    result = contribution_scores(sim.incentives, game)
    sim.layout.load_into(sim.model, sim.global_params)
    scores = {d: float(v) for d, v in zip(order, result.scores, strict=True)}
    riders = {order[k]: kind for k, kind in detect_free_riders(rows, step).items()}
    settlement = sim.book.propose(devices, aggregated, scores, riders)
    detection = None
    attack = sim.attack
    if attack is not None and attack.name == "free_rider" and round_number >= sim.attack_start:
        detection = detection_counts(devices, riders, sim.malicious)
    contribution = {
        "method": sim.incentives,
        "scores": {str(d): round(v, 9) for d, v in sorted(scores.items())},
        "evaluations": result.evaluations,
    }
    return RoundIncentives(contribution, settlement, detection, sorted(set(aggregated)))
