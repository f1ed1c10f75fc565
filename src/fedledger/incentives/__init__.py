"""Incentives: how much each device contributed to a round (:mod:`.contribution`), with exact
and GTG-Shapley values (:mod:`.shapley`); free-rider detection (:mod:`.free_riders`); and the
rewards, penalties and reputations that follow (:mod:`.rewards`)."""

from fedledger.incentives.contribution import (
    CONTRIBUTIONS,
    EXACT_LIMIT,
    VALUED,
    RoundAssessment,
    RoundContribution,
    RoundGame,
    assess_round,
    contribution_scores,
)
from fedledger.incentives.free_riders import FREE_RIDING, detect_free_riders
from fedledger.incentives.rewards import RewardBook, RewardSettings, Settlement, split_pool
from fedledger.incentives.shapley import CoalitionValue, GtgSettings, exact_shapley, gtg_shapley

__all__ = [
    "CONTRIBUTIONS",
    "EXACT_LIMIT",
    "FREE_RIDING",
    "VALUED",
    "CoalitionValue",
    "GtgSettings",
    "RewardBook",
    "RewardSettings",
    "RoundAssessment",
    "RoundContribution",
    "RoundGame",
    "Settlement",
    "assess_round",
    "contribution_scores",
    "detect_free_riders",
    "exact_shapley",
    "gtg_shapley",
    "split_pool",
]
