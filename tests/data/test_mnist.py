"""MNIST loader: idx files (plain/gz, magic and size checks) and npz fallbacks."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from fedledger.config import DataConfig
from fedledger.data.mnist import load_mnist, read_idx
from fedledger.errors import DataError, DatasetNotFoundError


def _idx(path: Path, arr: np.ndarray, *, cut: int = 0) -> None:
    magic = 2051 if arr.ndim == 3 else 2049
    blob = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in arr.shape)
    blob += arr.astype(np.uint8).tobytes()
    blob = blob[: len(blob) - cut]
    path.write_bytes(gzip.compress(blob) if path.name.endswith(".gz") else blob)


def _write(folder: Path, n: int = 12, *, train: bool = True) -> None:
    rng = np.random.default_rng(0)
    prefixes = ("train", "t10k") if train else ("t10k",)
    for prefix in prefixes:
        _idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))


def test_idx_files(tmp_path: Path) -> None:
    _write(tmp_path)
    raw = load_mnist(DataConfig(name="mnist", dir=str(tmp_path)))
    assert raw.kind == "image" and raw.image_shape == (1, 28, 28) and raw.benign_class is None
    assert raw.classes == tuple("0123456789")
    assert raw.train.numeric.shape == (12, 784) and raw.test is not None
    assert raw.train.numeric.min() >= 0.0 and raw.train.numeric.max() <= 1.0


def test_npz_xy_as_training_split(tmp_path: Path) -> None:
    _write(tmp_path, train=False)
    rng = np.random.default_rng(1)
    np.savez(
        tmp_path / "first.npz",
        x=rng.integers(0, 256, (7, 28, 28)).astype(np.uint8),
        y=rng.integers(0, 10, 7).astype(np.uint8),
    )
    raw = load_mnist(DataConfig(name="mnist", dir=str(tmp_path)))
    assert len(raw.train) == 7 and raw.test is not None and len(raw.test) == 12


def test_keras_npz_by_path(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (5, 28, 28)),
        y_train=np.arange(5),
        x_test=rng.integers(0, 256, (3, 28, 28)),
        y_test=np.arange(3),
    )
    raw = load_mnist(DataConfig(name="mnist", path=str(path)))
    assert len(raw.train) == 5 and raw.test is not None and len(raw.test) == 3


def test_truncated_and_bad_magic(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    short = tmp_path / "short-idx3-ubyte"
    _idx(short, rng.integers(0, 256, (3, 28, 28)), cut=10)
    with pytest.raises(DataError, match="truncated"):
        read_idx(short)
    bad = tmp_path / "bad"
    bad.write_bytes(struct.pack(">II", 1234, 1) + b"\x00")
    with pytest.raises(DataError, match="magic"):
        read_idx(bad)
    gz = tmp_path / "trunc.gz"
    gz.write_bytes(gzip.compress(b"\x00" * 5000)[:30])
    with pytest.raises(DataError):
        read_idx(gz)


def test_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="no training images"):
        load_mnist(DataConfig(name="mnist", dir=str(tmp_path)))
    with pytest.raises(DatasetNotFoundError):
        load_mnist(DataConfig(name="mnist", dir=str(tmp_path / "nope")))


def test_npz_files_are_read_by_the_shared_reader(tmp_path: Path) -> None:
    from fedledger.data import mnist, npz_arrays

    assert mnist.read_npz is npz_arrays.read_npz and not hasattr(mnist, "_npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"not a readable \.npz file"):
        load_mnist(DataConfig(name="mnist", path=str(junk)))


def test_empty_npz_test_images_are_not_a_raw_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (5, 28, 28)),
        y_train=np.arange(5),
        x_test=np.zeros((0, 28, 28)),
        y_test=np.zeros(0, np.int64),
    )
    raw = load_mnist(DataConfig(name="mnist", path=str(path)))
    assert raw.test is not None and raw.test.numeric.shape == (0, 784)
