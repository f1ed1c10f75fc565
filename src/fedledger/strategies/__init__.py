"""Server-side aggregation strategies, one per file, under :class:`Strategy`."""

from fedledger.strategies.base import RoundContext, Strategy, weighted_mean
from fedledger.strategies.fedadam import FedAdam
from fedledger.strategies.fedavg import FedAvg
from fedledger.strategies.fedavgm import FedAvgM
from fedledger.strategies.fedprox import proximal_gradient, proximal_term
from fedledger.strategies.krum import Krum, krum_neighbours, krum_scores
from fedledger.strategies.median import Median, coordinate_median
from fedledger.strategies.registry import STRATEGIES, create_strategy

__all__ = [
    "STRATEGIES",
    "FedAdam",
    "FedAvg",
    "FedAvgM",
    "Krum",
    "Median",
    "RoundContext",
    "Strategy",
    "coordinate_median",
    "create_strategy",
    "krum_neighbours",
    "krum_scores",
    "proximal_gradient",
    "proximal_term",
    "weighted_mean",
]
