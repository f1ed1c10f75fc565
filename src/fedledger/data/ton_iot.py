"""TON_IoT telemetry loader: one CSV per IoT sensor type, merged into a union feature space.

Alsaedi et al., "TON_IoT Telemetry Dataset: A New Generation Dataset of IoT and IIoT for
Data-Driven Intrusion Detection Systems", IEEE Access 8, 2020. Files are
``Train_Test_IoT_<Device>.csv`` (Fridge, Garage_Door, GPS_Tracker, Modbus, Motion_Light,
Thermostat, Weather) or any ``*.csv[.gz]`` in ``data.dir``. Each device has its own columns plus
``date``, ``time``, ``label`` and ``type``; ``date``/``time``/``label`` are dropped, ``type`` is
the class (``normal`` first). Since devices measure different things, features form the union
over files: a feature a device does not have is 0 (numeric) or absent (categorical, all-zero
one-hot), with no extra indicator. Columns holding text (``door_state``, ``light_status``, ...)
are categorical. The device key is the file name without ``Train_Test_IoT_``.
"""

from __future__ import annotations

import numpy as np

from fedledger.config import DataConfig
from fedledger.data.sources import csv_files, require_dir, stem
from fedledger.data.tabular import Columns, concat, read_labelled, single_split_dataset
from fedledger.data.types import RawDataset
from fedledger.errors import DatasetNotFoundError

__all__ = ["load_ton_iot"]

_DROP = ("date", "time", "label", "ts")


def load_ton_iot(cfg: DataConfig, seed: int = 0) -> RawDataset:
    """Load TON_IoT telemetry CSVs from ``cfg.dir``; one device key per file.

    Raises
    ------
    DatasetNotFoundError
        The folder is missing or holds no CSV.
    DataError
        A file lacks the ``type`` column, or a row is ragged.
    """
    folder = require_dir(cfg.dir, "ton-iot", "Train_Test_IoT_<Device>.csv files")
    paths = csv_files(folder)
    if not paths:
        raise DatasetNotFoundError(f"ton-iot: no *.csv or *.csv.gz files in {folder}")
    parts: list[Columns] = []
    devices: list[str] = []
    for path in paths:
        device = stem(path).removeprefix("Train_Test_IoT_")
        cols = read_labelled(path, label="type", drop=_DROP, infer=True)
        n = len(cols)
        parts.append(
            Columns(
                cols.numeric,
                cols.categorical,
                np.char.lower(cols.label_text),
                np.full(n, device),
                cols.numeric_names,
                cols.categorical_names,
            )
        )
        devices.append(device)
    cols = concat(parts, union=True)
    return single_split_dataset("ton-iot", cols, {d: d for d in devices})
