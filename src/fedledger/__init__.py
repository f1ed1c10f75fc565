"""fedledger: blockchain-secured federated learning for IoT intrusion and anomaly detection.

The names below are imported on first use, so ``import fedledger.report`` (or the errors) does
not load torch.

Examples
--------
>>> import fedledger
>>> cfg = fedledger.load_config(None, ["train.rounds=3"])
>>> sim = fedledger.build_simulation(cfg)            # or build_simulation(cfg, model=my_module)
>>> result = sim.run_round(1)
>>> result.metrics["accuracy"]
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from fedledger.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    DatasetNotFoundError,
    FedledgerError,
    ModelError,
    RegistryError,
)

if TYPE_CHECKING:
    from fedledger.assemble import build_simulation
    from fedledger.config import Config, load_config
    from fedledger.fl import RunFolder, Runner, Simulation

try:
    __version__ = version("fedledger")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

_LAZY = {
    "build_simulation": "fedledger.assemble",
    "Config": "fedledger.config",
    "load_config": "fedledger.config",
    "RunFolder": "fedledger.fl",
    "Runner": "fedledger.fl",
    "Simulation": "fedledger.fl",
}

__all__ = [
    "CheckpointError",
    "Config",
    "ConfigError",
    "DataError",
    "DatasetNotFoundError",
    "FedledgerError",
    "ModelError",
    "RegistryError",
    "RunFolder",
    "Runner",
    "Simulation",
    "__version__",
    "build_simulation",
    "load_config",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fedledger' has no attribute {name!r}")
    return getattr(import_module(module), name)
