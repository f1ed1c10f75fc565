"""Finding dataset files from ``data.dir`` / ``data.path``, with errors naming what is missing."""

from __future__ import annotations

from pathlib import Path

from fedledger.data.csvio import find_file
from fedledger.errors import ConfigError, DatasetNotFoundError

__all__ = ["csv_files", "require_dir", "require_file", "require_named"]


def require_dir(folder: str, dataset: str, expected: str) -> Path:
    """``data.dir`` as a Path, checked to be an existing folder.

    Raises
    ------
    ConfigError
        ``data.dir`` is empty.
    DatasetNotFoundError
        The folder does not exist.
    """
    if not folder:
        raise ConfigError("data.dir", f"dataset {dataset} needs data.dir, a folder with {expected}")
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise DatasetNotFoundError(f"{dataset}: folder not found: {path} (expected {expected})")
    return path


def require_file(file: str, dataset: str, expected: str) -> Path:
    """``data.path`` as a Path, checked to be an existing file."""
    if not file:
        raise ConfigError("data.path", f"dataset {dataset} needs data.path, {expected}")
    path = Path(file).expanduser()
    if not path.is_file():
        raise DatasetNotFoundError(f"{dataset}: file not found: {path} (expected {expected})")
    return path


def require_named(folder: Path, dataset: str, name: str) -> Path:
    """``folder/name`` or ``folder/name.gz``.

    Raises
    ------
    DatasetNotFoundError
        Neither exists; the message names both.
    """
    found = find_file(folder, name)
    if found is None:
        raise DatasetNotFoundError(f"{dataset}: {folder} has no {name} or {name}.gz")
    return found


def csv_files(folder: Path) -> list[Path]:
    """Every ``*.csv`` and ``*.csv.gz`` directly in ``folder``, sorted by name."""
    found = [p for p in folder.iterdir() if p.is_file() and p.name.endswith((".csv", ".csv.gz"))]
    return sorted(found, key=lambda p: p.name)


def stem(path: Path) -> str:
    """File name without ``.gz`` / ``.csv`` / ``.txt`` / ``.json`` suffixes."""
    name = path.name
    for suffix in (".gz", ".csv", ".txt", ".json"):
        name = name.removesuffix(suffix)
    return name
