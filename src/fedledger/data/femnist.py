"""FEMNIST loader: LEAF json shards, one natural client per writer.

Caldas et al., "LEAF: A Benchmark for Federated Settings", arXiv:1812.01097, 2018. Files are
``dir/train/*.json[.gz]`` and ``dir/test/*.json[.gz]``, each ``{"users", "num_samples",
"user_data": {user: {"x": [[784 floats]], "y": [int]}}}``. Training rows carry their writer id
as the device key (so only writers with training data become devices); the test split keeps
every test row. Pixels are used as given (LEAF: 1.0 is the white background).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fedledger.config import DataConfig
from fedledger.data.csvio import read_bytes
from fedledger.data.sources import require_dir
from fedledger.data.types import RawDataset, Table
from fedledger.errors import DataError, DatasetNotFoundError

__all__ = ["CLASSES", "load_femnist"]

CLASSES = tuple(
    [str(d) for d in range(10)]
    + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    + [chr(c) for c in range(ord("a"), ord("z") + 1)]
)
_EXPECTED = "train/*.json[.gz] and test/*.json[.gz] LEAF shards"


def _user_data(path: Path) -> dict[str, Any]:
    raw = read_bytes(path)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not LEAF json ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("user_data"), dict):
        raise DataError(f"{path}: not LEAF json (no 'user_data' object)")
    users: dict[str, Any] = data["user_data"]
    return users


def _shards(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith((".json", ".json.gz")))


def _read_split(paths: list[Path]) -> Table:
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    writers: list[np.ndarray] = []
    for path in paths:
        user_data = _user_data(path)
        for user in sorted(user_data):
            record = user_data[user]
            try:
                x = np.asarray(record["x"], dtype=np.float32)
                y = np.asarray(record["y"], dtype=np.int64).reshape(-1)
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(f"{path}: user {user}: bad x/y arrays ({exc})") from None
            if x.ndim != 2 or x.shape[1] != 784:
                raise DataError(
                    f"{path}: user {user}: images have shape {x.shape[1:]}, expected 784 pixels"
                )
            if x.shape[0] != y.shape[0]:
                raise DataError(f"{path}: user {user}: {x.shape[0]} images, {y.shape[0]} labels")
            if y.size and (y.min() < 0 or y.max() >= len(CLASSES)):
                raise DataError(f"{path}: user {user}: label outside 0..61")
            xs.append(x)
            ys.append(y)
            writers.append(np.full(y.shape[0], str(user)))
    n = sum(len(y) for y in ys)
    return Table(
        numeric=np.concatenate(xs) if xs else np.zeros((0, 784), np.float32),
        categorical=np.zeros((n, 0), dtype=str),
        labels=np.concatenate(ys) if ys else np.zeros(0, np.int64),
        groups=np.concatenate(writers).astype(str) if writers else np.zeros(0, dtype=str),
    )


def load_femnist(cfg: DataConfig, seed: int = 0) -> RawDataset:
    """Load LEAF FEMNIST shards from ``cfg.dir``; device key = writer id.

    Raises
    ------
    DatasetNotFoundError
        ``cfg.dir`` or its ``train/`` shards are missing.
    DataError
        A shard is corrupt, or an image does not have 784 pixels.
    """
    folder = require_dir(cfg.dir, "femnist", _EXPECTED)
    train_files = _shards(folder / "train")
    if not train_files:
        raise DatasetNotFoundError(
            f"femnist: no {folder / 'train'}/*.json[.gz] (expected {_EXPECTED})"
        )
    test_files = _shards(folder / "test")
    return RawDataset(
        name="femnist",
        kind="image",
        classes=CLASSES,
        train=_read_split(train_files),
        test=_read_split(test_files) if test_files else None,
        image_shape=(1, 28, 28),
        benign_class=None,
    )
