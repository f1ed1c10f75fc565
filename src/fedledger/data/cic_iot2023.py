"""CIC-IoT2023 loader: every ``*.csv`` / ``*.csv.gz`` in ``data.dir`` (46 features + ``label``).

Neto et al., "CICIoT2023: A Real-Time Dataset and Benchmark for Large-Scale Attacks in IoT
Environment", Sensors 23(13), 2023. The classes are the names found in the label column of the
files present (34 in the full release; ``BenignTraffic`` first); every feature column is numeric.
There is no test split in the files.
"""

from __future__ import annotations

from fedledger.config import DataConfig
from fedledger.data.sources import csv_files, require_dir
from fedledger.data.tabular import concat, read_labelled, single_split_dataset
from fedledger.data.types import RawDataset
from fedledger.errors import DatasetNotFoundError

__all__ = ["load_cic_iot2023"]


def load_cic_iot2023(cfg: DataConfig, seed: int = 0) -> RawDataset:
    """Load CIC-IoT2023 CSVs from ``cfg.dir``.

    Raises
    ------
    DatasetNotFoundError
        The folder is missing or holds no CSV.
    DataError
        Files have different columns, a row is ragged, or a feature is not a number.
    """
    folder = require_dir(cfg.dir, "cic-iot2023", "CIC-IoT2023 *.csv files")
    paths = csv_files(folder)
    if not paths:
        raise DatasetNotFoundError(f"cic-iot2023: no *.csv or *.csv.gz files in {folder}")
    cols = concat([read_labelled(p, label="label") for p in paths])
    return single_split_dataset("cic-iot2023", cols)
