"""``csv``: any labelled CSV, configured by ``data.label``, ``data.categorical``, ``data.drop``.

Reads ``data.path``, or every ``*.csv`` / ``*.csv.gz`` directly in ``data.dir`` (same header
required). Columns listed in ``data.categorical`` are one-hot encoded; every other column must
be numeric. ``data.column`` names an optional natural device column: it becomes the device key
of each row (for ``partition = column``), not a feature. Neither the label nor the device column
may also appear in ``data.categorical`` or ``data.drop`` (a
:class:`~fedledger.errors.ConfigError` says so): a categorical label would leak into the
features. A label called normal, benign or BenignTraffic (any case) is the benign class and
comes first; otherwise there is none.
"""

from __future__ import annotations

from pathlib import Path

from fedledger.config import DataConfig
from fedledger.data.sources import csv_files, require_dir, require_file
from fedledger.data.tabular import concat, read_labelled, single_split_dataset
from fedledger.data.types import RawDataset
from fedledger.errors import ConfigError, DatasetNotFoundError

__all__ = ["load_csv"]


def _paths(cfg: DataConfig) -> list[Path]:
    if cfg.path:
        return [require_file(cfg.path, "csv", "a CSV file with a header row")]
    if not cfg.dir:
        raise ConfigError("data.path", "dataset csv needs data.path (a CSV) or data.dir (a folder)")
    folder = require_dir(cfg.dir, "csv", "*.csv or *.csv.gz files")
    paths = csv_files(folder)
    if not paths:
        raise DatasetNotFoundError(f"csv: no *.csv or *.csv.gz files in {folder}")
    return paths


def _check_roles(cfg: DataConfig) -> None:
    """Reject a label or device column that is also listed as categorical or dropped.

    Names are compared case-insensitively, as columns are looked up that way.
    """
    roles = {"data.label": cfg.label, "data.column": cfg.column}
    for key, listed in (("data.categorical", cfg.categorical), ("data.drop", cfg.drop)):
        lowered = {name.lower() for name in listed}
        for role, name in roles.items():
            if name and name.lower() in lowered:
                what = "label" if role == "data.label" else "device"
                raise ConfigError(
                    key, f"{name!r} is the {what} column ({role}); remove it from {key}"
                )
    if cfg.column.lower() == cfg.label.lower():
        raise ConfigError("data.column", f"{cfg.column!r} is the label column (data.label)")


def load_csv(cfg: DataConfig, seed: int = 0) -> RawDataset:
    """Load a generic labelled CSV (see the module docstring).

    Raises
    ------
    ConfigError
        ``data.label`` is empty, or the label or device column (``data.column``) is also listed
        in ``data.categorical`` or ``data.drop``.
    DatasetNotFoundError
        The file or folder is missing.
    DataError
        A column is missing, a row is ragged, or a numeric column holds a non-number.
    """
    if not cfg.label:
        raise ConfigError("data.label", "dataset csv needs data.label, the label column's name")
    _check_roles(cfg)
    parts = [
        read_labelled(
            p, label=cfg.label, categorical=cfg.categorical, drop=cfg.drop, group=cfg.column
        )
        for p in _paths(cfg)
    ]
    cols = concat(parts)
    return single_split_dataset("csv", cols)
