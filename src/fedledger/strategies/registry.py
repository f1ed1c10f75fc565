"""Config names → strategy classes, in one place."""

from __future__ import annotations

from fedledger.config import StrategyConfig
from fedledger.errors import RegistryError
from fedledger.strategies.base import Strategy
from fedledger.strategies.bulyan import Bulyan
from fedledger.strategies.clipping import NormClipping
from fedledger.strategies.fedadam import FedAdam
from fedledger.strategies.fedavg import FedAvg
from fedledger.strategies.fedavgm import FedAvgM
from fedledger.strategies.fltrust import FLTrust
from fedledger.strategies.krum import Krum
from fedledger.strategies.median import Median
from fedledger.strategies.screen import AnomalyScreen
from fedledger.strategies.trimmed_mean import TrimmedMean

__all__ = ["STRATEGIES", "create_strategy"]

STRATEGIES: dict[str, type[Strategy]] = {
    "fedavg": FedAvg,
    "fedavgm": FedAvgM,
    "fedadam": FedAdam,
    "median": Median,
    "trimmed_mean": TrimmedMean,
    "krum": Krum,
    "bulyan": Bulyan,
    "clipping": NormClipping,
    "fltrust": FLTrust,
    "screen": AnomalyScreen,
}


def create_strategy(cfg: StrategyConfig) -> Strategy:
    """Build the strategy that ``cfg.name`` names, configured from the ``[strategy]`` section."""
    cls = STRATEGIES.get(cfg.name)
    if cls is None:
        raise RegistryError("strategy", cfg.name, list(STRATEGIES))
    return cls.from_config(cfg)
