"""N-BaIoT loader: 115 Kitsune traffic statistics per row, one natural device per IoT device.

Meidan et al., "N-BaIoT: Network-based Detection of IoT Botnet Attacks Using Deep
Autoencoders", IEEE Pervasive Computing 17(3), 2018. Two layouts are read:

(a) the UCI per-device folders ``dir/<Device>/benign_traffic.csv`` and
    ``dir/<Device>/{gafgyt,mirai}_attacks/<attack>.csv`` (any subset, plain or ``.gz``); the
    class comes from the file name (``benign``, ``gafgyt_scan``, ``mirai_udp``, ...);
(b) one labelled CSV (``data.path``, or every such CSV directly in ``data.dir``) with the 115
    features plus ``device``, ``botnet``, ``attack``, ``label`` (and optional provenance columns
    ``source``, ``row_in_source``, which are ignored).

There is no test split in the files; :func:`fedledger.data.build_federated` holds one out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedledger.config import DataConfig
from fedledger.data.csvio import find_file, read_csv
from fedledger.data.sources import csv_files, require_dir, require_file
from fedledger.data.tabular import Columns, concat, read_labelled, single_split_dataset
from fedledger.data.types import RawDataset
from fedledger.errors import DataError, DatasetNotFoundError

__all__ = ["GAFGYT", "MIRAI", "load_n_baiot"]

GAFGYT = ("combo", "junk", "scan", "tcp", "udp")
MIRAI = ("ack", "scan", "syn", "udp", "udpplain")
_META = ("device", "botnet", "attack", "label", "source", "row_in_source")
_EXPECTED = (
    "<Device>/benign_traffic.csv and <Device>/{gafgyt,mirai}_attacks/*.csv, "
    "or a labelled CSV with device/botnet/attack/label columns"
)


def _file_rows(path: Path, device: str, cls: str) -> Columns:
    data = read_csv(path, header=True)
    cols = list(range(data.n_fields))
    n = len(data)
    return Columns(
        numeric=data.numeric(cols),
        categorical=np.zeros((n, 0), dtype=str),
        label_text=np.full(n, cls),
        groups=np.full(n, device),
        numeric_names=data.header or (),
        categorical_names=(),
    )


def _device_files(device_dir: Path) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    benign = find_file(device_dir, "benign_traffic.csv")
    if benign is not None:
        found.append((benign, "benign"))
    for botnet, attacks in (("gafgyt", GAFGYT), ("mirai", MIRAI)):
        for attack in attacks:
            path = find_file(device_dir / f"{botnet}_attacks", f"{attack}.csv")
            if path is not None:
                found.append((path, f"{botnet}_{attack}"))
    return found


def _per_device(folder: Path) -> list[Columns]:
    parts: list[Columns] = []
    for device_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path, cls in _device_files(device_dir):
            parts.append(_file_rows(path, device_dir.name, cls))
    return parts


def _is_labelled(path: Path) -> bool:
    try:
        header = read_csv(path, header=True).header or ()
    except DataError:
        return False
    lowered = {h.lower() for h in header}
    return "device" in lowered and ("attack" in lowered or "label" in lowered)


def _labelled(path: Path) -> Columns:
    header = read_csv(path, header=True).header or ()
    lowered = {h.lower() for h in header}
    label = "attack" if "attack" in lowered else "label"
    cols = read_labelled(path, label=label, drop=[c for c in _META if c != label], group="device")
    text = cols.label_text
    if label == "attack" and "botnet" in lowered:
        botnet = read_labelled(path, label="botnet", drop=_META, group="").label_text
        benign = (np.char.lower(text) == "benign") | (np.char.lower(botnet) == "none")
        text = np.where(benign, "benign", np.char.add(np.char.add(botnet, "_"), text))
    elif label == "label":
        text = np.where(np.isin(np.char.lower(text), ["0", "benign", "normal"]), "benign", "attack")
    return Columns(
        cols.numeric,
        cols.categorical,
        text.astype(str),
        cols.groups,
        cols.numeric_names,
        cols.categorical_names,
    )


def load_n_baiot(cfg: DataConfig, seed: int = 0) -> RawDataset:
    """Load N-BaIoT from a labelled CSV (``cfg.path``) or a folder (``cfg.dir``).

    Raises
    ------
    DatasetNotFoundError
        Neither a labelled CSV nor per-device folders were found.
    DataError
        Files disagree on their columns, or a value is not a number.
    """
    if cfg.path:
        parts = [_labelled(require_file(cfg.path, "n-baiot", "a labelled N-BaIoT CSV"))]
    else:
        folder = require_dir(cfg.dir, "n-baiot", _EXPECTED)
        labelled = [p for p in csv_files(folder) if _is_labelled(p)]
        parts = [_labelled(p) for p in labelled] if labelled else _per_device(folder)
        if not parts:
            raise DatasetNotFoundError(
                f"n-baiot: nothing to load in {folder} (expected {_EXPECTED})"
            )
    cols = concat(parts)
    devices = sorted(set(str(g) for g in cols.groups)) if cols.groups is not None else []
    return single_split_dataset("n-baiot", cols, {d: d for d in devices})
