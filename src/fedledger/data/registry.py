"""The dataset registry: an explicit dict from ``data.name`` to how that dataset is loaded.

Nothing registers itself on import; adding a dataset means adding one entry to
:data:`DATASETS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fedledger.config import DataConfig
from fedledger.data.cic_iot2023 import load_cic_iot2023
from fedledger.data.digits import load_digits
from fedledger.data.femnist import load_femnist
from fedledger.data.generic_csv import load_csv
from fedledger.data.labels import collapse_binary
from fedledger.data.mnist import load_mnist
from fedledger.data.n_baiot import load_n_baiot
from fedledger.data.npz_arrays import load_npz
from fedledger.data.nsl_kdd import load_nsl_kdd
from fedledger.data.synthetic import load_synthetic
from fedledger.data.ton_iot import load_ton_iot
from fedledger.data.types import RawDataset
from fedledger.data.unsw_nb15 import load_unsw_nb15
from fedledger.errors import RegistryError

__all__ = ["DATASETS", "DatasetSpec", "Loader", "Needs", "get_dataset", "load_dataset"]

Loader = Callable[[DataConfig, int], RawDataset]


Needs = Literal["dir", "path", "dir-or-path", "nothing"]
"""Which config key locates a dataset's files (``"dir-or-path"``: either one)."""


@dataclass(frozen=True)
class DatasetSpec:
    """How one dataset is found and loaded.

    Attributes
    ----------
    name
        The ``data.name`` that selects it.
    loader
        ``loader(cfg, seed) -> RawDataset``.
    description
        One line for ``fedledger datasets list``.
    needs
        Which config key locates the files: ``"dir"`` (``data.dir``), ``"path"``
        (``data.path``), ``"dir-or-path"`` (either) or ``"nothing"``.
    kind
        ``"tabular"``, ``"image"`` or ``"arrays"``.
    source
        The files the loader expects, as a user would name them (or where the data comes from).
    """

    name: str
    loader: Loader
    description: str
    needs: Needs
    kind: Literal["tabular", "image", "arrays"]
    source: str = ""


_SPECS = (
    DatasetSpec(
        "synthetic",
        load_synthetic,
        "synthetic IoT traffic: 5 device types, 5 attacks, up to 4000 devices",
        "nothing",
        "tabular",
        "generated offline, no files",
    ),
    DatasetSpec(
        "digits",
        load_digits,
        "scikit-learn 8x8 handwritten digits, 10 classes",
        "nothing",
        "image",
        "bundled with scikit-learn",
    ),
    DatasetSpec(
        "nsl-kdd",
        load_nsl_kdd,
        "NSL-KDD intrusion records, 5 classes",
        "dir",
        "tabular",
        "KDDTrain+.txt and KDDTest+.txt, plain or .gz",
    ),
    DatasetSpec(
        "n-baiot",
        load_n_baiot,
        "N-BaIoT botnet traffic, one device per IoT device",
        "dir-or-path",
        "tabular",
        "UCI <Device>/ folders of CSVs, or labelled CSVs with device/botnet/attack/label columns",
    ),
    DatasetSpec(
        "unsw-nb15",
        load_unsw_nb15,
        "UNSW-NB15 network flows, 10 classes",
        "dir",
        "tabular",
        "UNSW_NB15_training-set.csv and UNSW_NB15_testing-set.csv, plain or .gz",
    ),
    DatasetSpec(
        "ton-iot",
        load_ton_iot,
        "TON_IoT telemetry, one device per sensor type",
        "dir",
        "tabular",
        "Train_Test_IoT_<Device>.csv files, plain or .gz",
    ),
    DatasetSpec(
        "cic-iot2023",
        load_cic_iot2023,
        "CIC-IoT2023 flows, classes from the label column",
        "dir",
        "tabular",
        "CIC-IoT2023 *.csv files with a label column, plain or .gz",
    ),
    DatasetSpec(
        "mnist",
        load_mnist,
        "MNIST handwritten digits, 10 classes",
        "dir-or-path",
        "image",
        "train-/t10k- idx files (plain or .gz) and/or .npz arrays (x_train, y_train or x, y)",
    ),
    DatasetSpec(
        "femnist",
        load_femnist,
        "LEAF FEMNIST, 62 classes, one device per writer",
        "dir",
        "image",
        "LEAF train/ and test/ folders of .json or .json.gz shards",
    ),
    DatasetSpec(
        "csv",
        load_csv,
        "any labelled CSV (set data.label)",
        "dir-or-path",
        "tabular",
        "one CSV with a header row, or a folder of them with the same header",
    ),
    DatasetSpec(
        "npz",
        load_npz,
        "preprocessed arrays used as given",
        "path",
        "arrays",
        "an .npz with x_train, y_train [, client, x_test, y_test]",
    ),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}
"""Every dataset fedledger can load, by ``data.name``."""


def get_dataset(name: str) -> DatasetSpec:
    """The spec registered as ``name``.

    Raises
    ------
    RegistryError
        ``name`` is not registered; the message lists the known names.
    """
    try:
        return DATASETS[name]
    except KeyError:
        raise RegistryError("dataset", name, list(DATASETS)) from None


def load_dataset(cfg: DataConfig, seed: int = 0) -> RawDataset:
    """Load ``cfg.name`` with its loader and apply ``cfg.binary``.

    Raises
    ------
    RegistryError
        Unknown dataset name.
    ConfigError
        ``binary`` was asked for a dataset without a benign class.
    """
    raw = get_dataset(cfg.name).loader(cfg, seed)
    return collapse_binary(raw) if cfg.binary else raw
