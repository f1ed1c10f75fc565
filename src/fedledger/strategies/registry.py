"""Config names → strategy classes, in one place."""

from __future__ import annotations

from fedledger.config import StrategyConfig
from fedledger.errors import RegistryError
from fedledger.strategies.base import Strategy
from fedledger.strategies.fedadam import FedAdam
from fedledger.strategies.fedavg import FedAvg
from fedledger.strategies.fedavgm import FedAvgM
from fedledger.strategies.krum import Krum
from fedledger.strategies.median import Median

__all__ = ["STRATEGIES", "create_strategy"]

STRATEGIES: dict[str, type[Strategy]] = {
    "fedavg": FedAvg,
    "fedavgm": FedAvgM,
    "fedadam": FedAdam,
    "median": Median,
    "krum": Krum,
}


def create_strategy(cfg: StrategyConfig) -> Strategy:
    """Build the strategy that ``cfg.name`` names, configured from the ``[strategy]`` section."""
    cls = STRATEGIES.get(cfg.name)
    if cls is None:
        raise RegistryError("strategy", cfg.name, list(STRATEGIES))
    return cls.from_config(cfg)
