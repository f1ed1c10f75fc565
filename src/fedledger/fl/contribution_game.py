"""What each device contributed to a round: the coalition game on the validators' root data,
scored with :mod:`fedledger.incentives`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fedledger.fl.round_data import LocalUpdates, round_rng
from fedledger.incentives import RoundGame, contribution_scores

if TYPE_CHECKING:
    from fedledger.fl.engine import Simulation

__all__ = ["LOSS_CAP", "root_quality", "round_contributions"]

LOSS_CAP = 1e6
"""The largest root loss a contribution game counts (see :func:`root_quality`)."""


def root_quality(sim: Simulation, params: torch.Tensor) -> float:
    """Minus the mean loss of ``params`` on the validators' root rows (higher is better),
    the loss capped at :data:`LOSS_CAP` (also for a non-finite loss, so that a coalition
    holding a diverging update still has a value to subtract)."""
    x, y = sim.root_data()
    sim.layout.load_into(sim.model, params)
    sim.model.eval()
    with torch.no_grad():
        loss = float(sim.task.per_sample_loss(sim.model(x), x, y).to(torch.float64).mean())
    return -min(loss, LOSS_CAP) if np.isfinite(loss) else -LOSS_CAP


def round_contributions(sim: Simulation, round_number: int, local: LocalUpdates) -> dict[str, Any]:
    """The round's ``contribution`` metrics entry: every device's score under
    ``incentives.method`` (:mod:`fedledger.incentives`), on the coalition game whose value
    is :func:`root_quality`, and the model evaluations that took. The round's starting model
    is ``sim.previous_params``; ``sim.global_params`` already holds the aggregate."""
    base = sim.previous_params
    assert base is not None

    def quality(params: torch.Tensor) -> float:
        return root_quality(sim, params)

    game = RoundGame(
        base=base,
        updates=local.updates,
        weights=local.weights,
        aggregate=sim.global_params - base,
        quality=quality,
        rng=round_rng(sim.train_cfg.seed, round_number, 12),
    )
    result = contribution_scores(sim.incentives, game)
    sim.layout.load_into(sim.model, sim.global_params)
    return {
        "method": sim.incentives,
        "scores": {
            str(d): round(float(v), 9)
            for d, v in sorted(zip(local.order, result.scores, strict=True))
        },
        "evaluations": result.evaluations,
    }
