"""Server-side aggregation strategies, one per file, under :class:`Strategy`."""

from fedledger.strategies.base import RoundContext, Strategy, weighted_mean
from fedledger.strategies.bulyan import Bulyan, bulyan_sizes
from fedledger.strategies.clipping import NormClipping, clip_updates
from fedledger.strategies.fedadam import FedAdam
from fedledger.strategies.fedavg import FedAvg
from fedledger.strategies.fedavgm import FedAvgM
from fedledger.strategies.fedprox import proximal_gradient, proximal_term
from fedledger.strategies.fltrust import FLTrust, trust_scores
from fedledger.strategies.krum import Krum, krum_neighbours, krum_scores
from fedledger.strategies.median import Median, coordinate_median
from fedledger.strategies.registry import STRATEGIES, create_strategy
from fedledger.strategies.trimmed_mean import TrimmedMean, trim_count, trimmed_mean

__all__ = [
    "STRATEGIES",
    "Bulyan",
    "FLTrust",
    "FedAdam",
    "FedAvg",
    "FedAvgM",
    "Krum",
    "Median",
    "NormClipping",
    "RoundContext",
    "Strategy",
    "TrimmedMean",
    "bulyan_sizes",
    "clip_updates",
    "coordinate_median",
    "create_strategy",
    "krum_neighbours",
    "krum_scores",
    "proximal_gradient",
    "proximal_term",
    "trim_count",
    "trimmed_mean",
    "trust_scores",
    "weighted_mean",
]
