"""Datasets, partitioners and preprocessing: from files (or a generator) to simulated devices.

Examples
--------
>>> from fedledger.config import DataConfig
>>> fed = build_federated(DataConfig(name="synthetic", clients=5), seed=0)
>>> fed.n_clients, fed.classes[0], fed.synthetic
(5, 'benign', True)
"""

from fedledger.data.build import build_federated
from fedledger.data.registry import DATASETS, DatasetSpec, get_dataset, load_dataset
from fedledger.data.types import FederatedDataset, RawDataset, Table

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "FederatedDataset",
    "RawDataset",
    "Table",
    "build_federated",
    "get_dataset",
    "load_dataset",
]
