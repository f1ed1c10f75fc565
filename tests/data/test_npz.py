"""The npz arrays loader: used exactly as given, client column becomes the device key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedledger.config import DataConfig
from fedledger.data import build_federated
from fedledger.data.npz_arrays import load_npz
from fedledger.errors import DataError, DatasetNotFoundError


def _w1_like(path: Path, n: int = 120, f: int = 7, **extra: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.random((n, f)).astype(np.float32),
        "y_train": rng.integers(0, 3, n).astype(np.int64),
        "client": rng.integers(0, 12, n).astype(np.int32),
        "x_test": rng.random((30, f)).astype(np.float32),
        "y_test": rng.integers(0, 3, 30).astype(np.int64),
        "feature_names": np.array([f"f{j}" for j in range(f)]),
    }
    arrays.update(extra)
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    return path


def test_column_partition_gives_the_file_clients_in_order(tmp_path: Path) -> None:
    path = _w1_like(tmp_path / "w.npz")
    d = np.load(path)
    fed = build_federated(DataConfig(name="npz", path=str(path), partition="column"), seed=5)
    assert fed.n_clients == 12
    assert fed.device_names == tuple(str(i) for i in range(12))
    np.testing.assert_array_equal(fed.x_train, d["x_train"])  # untouched
    np.testing.assert_array_equal(fed.x_test, d["x_test"])
    for c, rows in enumerate(fed.clients):
        np.testing.assert_array_equal(rows, np.flatnonzero(d["client"] == c))
    assert fed.feature_names == tuple(f"f{j}" for j in range(7))


def test_images_keep_their_shape(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "img.npz"
    np.savez(path, x_train=rng.random((40, 1, 4, 4)), y_train=rng.integers(0, 2, 40))
    fed = build_federated(DataConfig(name="npz", path=str(path), clients=4), seed=0)
    assert fed.feature_shape == (1, 4, 4) and fed.x_train.dtype == np.float32
    assert len(fed.x_train) + len(fed.x_test) == 40


def test_class_names_and_benign(tmp_path: Path) -> None:
    path = _w1_like(tmp_path / "w.npz", classes=np.array(["Normal", "dos", "probe"]))
    raw = load_npz(DataConfig(name="npz", path=str(path)))
    assert raw.classes == ("Normal", "dos", "probe") and raw.benign_class == 0
    plain = load_npz(DataConfig(name="npz", path=str(_w1_like(tmp_path / "p.npz"))))
    assert plain.classes == ("0", "1", "2") and plain.benign_class is None


def test_wrong_feature_count(tmp_path: Path) -> None:
    path = _w1_like(tmp_path / "w.npz", x_test=np.zeros((30, 6), np.float32))
    with pytest.raises(DataError, match="x_test"):
        load_npz(DataConfig(name="npz", path=str(path)))


def test_missing_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros((3, 2)))
    with pytest.raises(DataError, match="x_train"):
        load_npz(DataConfig(name="npz", path=str(path)))
    with pytest.raises(DatasetNotFoundError, match=r"missing\.npz"):
        load_npz(DataConfig(name="npz", path=str(tmp_path / "missing.npz")))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable"):
        load_npz(DataConfig(name="npz", path=str(junk)))


def test_empty_x_test_loads_without_a_raw_error(tmp_path: Path) -> None:
    path = _w1_like(tmp_path / "w.npz", x_test=np.zeros((0, 7)), y_test=np.zeros(0, np.int64))
    raw = load_npz(DataConfig(name="npz", path=str(path)))
    assert raw.test is not None and raw.test.numeric.shape == (0, 7)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (np.array(3), "got 3"),
        (np.array(-1), "got -1"),
        (np.array([0, 1]), r"got shape \(2,\)"),
        (np.array("benign"), "got 'benign'"),
        (np.array(1.5), "got '1.5'"),
    ],
)
def test_benign_class_must_be_a_class_index(tmp_path: Path, value: np.ndarray, shown: str) -> None:
    path = _w1_like(tmp_path / "w.npz", benign_class=value)
    expected = rf"benign_class must be an integer class index in 0\.\.2, {shown}"
    with pytest.raises(DataError, match=expected):
        load_npz(DataConfig(name="npz", path=str(path)))


def test_benign_class_accepts_integral_scalars(tmp_path: Path) -> None:
    for value in (np.array(2), np.array(1.0), np.int16(0)):
        path = _w1_like(tmp_path / "w.npz", benign_class=np.asarray(value))
        assert load_npz(DataConfig(name="npz", path=str(path))).benign_class == int(value)
