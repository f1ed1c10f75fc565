"""Loaders against the real datasets in ``../shared`` (next to the repository), when present."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from fedledger.config import DataConfig
from fedledger.data import build_federated, load_dataset
from fedledger.data.partition import partition_dirichlet

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
DATASETS = SHARED / "datasets"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not DATASETS.is_dir(), reason=f"real datasets not found at {DATASETS} (clone shared/ there)"
    ),
]


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


def test_nsl_kdd_full() -> None:
    folder = _need(DATASETS / "nsl_kdd")
    start = time.perf_counter()
    fed = build_federated(DataConfig(name="nsl-kdd", dir=str(folder)), seed=0)
    elapsed = time.perf_counter() - start
    assert len(fed.x_train) == 125_973 and len(fed.x_test) == 22_544
    assert fed.classes == ("normal", "DoS", "Probe", "R2L", "U2R")
    assert np.bincount(fed.y_train).tolist()[0] == 67_343
    assert int((fed.y_test != 0).sum()) == 12_833
    assert fed.n_clients == 20 and fed.x_train.dtype == np.float32
    assert elapsed < 20.0, f"NSL-KDD took {elapsed:.1f} s"


@pytest.mark.parametrize("form", ["dir", "path"])
def test_n_baiot_subset(form: str) -> None:
    folder = _need(DATASETS / "n_baiot")
    if form == "dir":
        cfg = DataConfig(name="n-baiot", dir=str(folder))
    else:
        cfg = DataConfig(name="n-baiot", path=str(folder / "n_baiot_subset_labeled.csv.gz"))
    raw = load_dataset(cfg)
    assert raw.classes == ("benign", "gafgyt_scan", "gafgyt_udp", "mirai_udp")
    assert np.bincount(raw.train.labels).tolist() == [3050, 299, 299, 299]
    assert raw.train.numeric.shape == (3947, 115)
    fed = build_federated(cfg, seed=0)
    assert fed.device_names == ("Danmini_Doorbell", "Ecobee_Thermostat")


def test_mnist_dir() -> None:
    raw = load_dataset(DataConfig(name="mnist", dir=str(_need(DATASETS / "mnist"))))
    assert len(raw.train) == 10_000 and raw.test is not None and len(raw.test) == 10_000
    assert np.bincount(raw.test.labels).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert raw.image_shape == (1, 28, 28) and float(raw.train.numeric.max()) <= 1.0


def test_femnist_dir() -> None:
    cfg = DataConfig(name="femnist", dir=str(_need(DATASETS / "femnist_leaf")))
    fed = build_federated(cfg, seed=0)
    assert fed.n_clients == 105 and len(fed.x_train) == 14_708 and len(fed.x_test) == 4_088
    assert fed.n_classes == 62 and fed.feature_shape == (1, 28, 28)


def test_w1_npz_column_partition() -> None:
    path = _need(SHARED / "bench" / "w1_nslkdd.npz")
    fed = build_federated(DataConfig(name="npz", path=str(path), partition="column"), seed=0)
    with np.load(path) as d:
        client = d["client"]
        np.testing.assert_array_equal(fed.x_train, d["x_train"])
        np.testing.assert_array_equal(fed.y_test, d["y_test"])
    assert fed.n_clients == 100
    for c, rows in enumerate(fed.clients):
        np.testing.assert_array_equal(rows, np.flatnonzero(client == c))
    # our Dirichlet partitioner reproduces make_w1.py's split (seed 0, alpha 0.5, min 32)
    parts = partition_dirichlet(fed.y_train, 100, 0.5, seed=0, min_size=32)
    for c, rows in enumerate(parts):
        np.testing.assert_array_equal(rows, np.flatnonzero(client == c))
