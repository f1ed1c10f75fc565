"""Incentives: how much each device contributed to a round (:mod:`.contribution`), with exact
and GTG-Shapley values (:mod:`.shapley`)."""

from fedledger.incentives.contribution import (
    CONTRIBUTIONS,
    EXACT_LIMIT,
    VALUED,
    RoundContribution,
    RoundGame,
    contribution_scores,
)
from fedledger.incentives.shapley import CoalitionValue, GtgSettings, exact_shapley, gtg_shapley

__all__ = [
    "CONTRIBUTIONS",
    "EXACT_LIMIT",
    "VALUED",
    "CoalitionValue",
    "GtgSettings",
    "RoundContribution",
    "RoundGame",
    "contribution_scores",
    "exact_shapley",
    "gtg_shapley",
]
