"""fedledger: blockchain-secured federated learning for IoT intrusion and anomaly detection.

Examples
--------
>>> import fedledger
>>> cfg = fedledger.load_config(None, ["train.rounds=3"])
>>> sim = fedledger.build_simulation(cfg)            # or build_simulation(cfg, model=my_module)
>>> result = sim.run_round(1)
>>> result.metrics["accuracy"]
"""

from importlib.metadata import PackageNotFoundError, version

from fedledger.assemble import build_simulation
from fedledger.config import Config, load_config
from fedledger.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    DatasetNotFoundError,
    FedledgerError,
    ModelError,
    RegistryError,
)
from fedledger.fl import RunFolder, Runner, Simulation

try:
    __version__ = version("fedledger")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

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
