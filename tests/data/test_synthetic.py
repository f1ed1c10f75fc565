"""The synthetic IoT traffic generator: seeded, non-IID, fast, and labelled as synthetic."""

from __future__ import annotations

import time

import numpy as np
import pytest

from fedledger.config import DataConfig
from fedledger.data import build_federated
from fedledger.data.synthetic import (
    CLASSES,
    DEVICE_TYPES,
    MAX_DEVICES,
    MAX_TRAIN_ROWS,
    MIN_DEVICE_ROWS,
    generate,
)
from fedledger.errors import ConfigError


def test_shape_and_labels() -> None:
    raw = generate(10, seed=3)
    assert raw.synthetic and raw.kind == "tabular"
    assert raw.classes == CLASSES and raw.classes[0] == "benign" and raw.benign_class == 0
    assert 15 <= len(raw.numeric_names) + len(raw.categorical_names) <= 25
    assert raw.train.groups is not None and raw.test is not None
    devices = np.unique(raw.train.groups)
    assert len(devices) == 10
    assert set(raw.group_clusters) == set(devices.tolist())
    assert set(raw.group_clusters.values()) == set(DEVICE_TYPES)
    sizes = np.unique(raw.train.groups, return_counts=True)[1]
    assert sizes.min() >= 300 and sizes.max() <= 2500
    assert np.all(np.isfinite(raw.train.numeric)) and np.all(raw.train.numeric > 0)
    assert set(np.unique(raw.train.labels)) == set(range(len(CLASSES)))


def test_seeded() -> None:
    a, b, c = generate(5, seed=1), generate(5, seed=1), generate(5, seed=2)
    np.testing.assert_array_equal(a.train.numeric, b.train.numeric)
    np.testing.assert_array_equal(a.train.categorical, b.train.categorical)
    assert a.train.numeric.shape != c.train.numeric.shape or not np.allclose(
        a.train.numeric, c.train.numeric
    )


def test_non_iid_across_device_types() -> None:
    raw = generate(20, seed=0)
    assert raw.train.groups is not None
    mixes = []
    for dtype in DEVICE_TYPES:
        devices = [d for d, t in raw.group_clusters.items() if t == dtype]
        rows = np.isin(raw.train.groups, devices)
        mixes.append(np.bincount(raw.train.labels[rows], minlength=len(CLASSES)) / rows.sum())
    spread = np.ptp(np.array(mixes), axis=0)
    assert spread[1:].max() > 0.1  # attack mixes differ by device type


def test_twenty_devices_fast() -> None:
    start = time.perf_counter()
    generate(20, seed=0)
    assert time.perf_counter() - start < 1.0


def test_build_default_is_column_partition() -> None:
    fed = build_federated(DataConfig(clients=6), seed=0)
    assert fed.n_clients == 6 and fed.synthetic
    assert fed.device_names == tuple(f"device-{i:03d}" for i in range(6))
    assert set(fed.clusters) <= set(DEVICE_TYPES)
    assert fed.x_train.dtype == np.float32 and fed.y_train.dtype == np.int64


def test_default_twenty_devices_unchanged() -> None:
    # the default run's numbers in the docs come from exactly this data
    raw = generate(20, seed=0)
    assert raw.test is not None and (len(raw.train), len(raw.test)) == (26495, 6614)
    assert np.bincount(raw.train.labels).tolist() == [17890, 1792, 1942, 1505, 2306, 1060]
    assert float(raw.train.numeric.sum()) == pytest.approx(49197987.46937174, rel=1e-12)


@pytest.mark.parametrize("n", [81, 1000, MAX_DEVICES])
def test_many_devices_stay_within_the_row_bound(n: int) -> None:
    start = time.perf_counter()
    raw = generate(n, seed=0)
    assert time.perf_counter() - start < 10.0
    assert raw.train.groups is not None and len(raw.train) <= MAX_TRAIN_ROWS
    names, first, sizes = np.unique(raw.train.groups, return_index=True, return_counts=True)
    assert len(names) == n and sizes.min() >= MIN_DEVICE_ROWS
    assert np.all(np.diff(first) > 0)  # zero-padded names sort in generation order


def test_too_many_synthetic_devices_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=rf"^data\.clients: .*at most {MAX_DEVICES} devices"):
        build_federated(DataConfig(clients=MAX_DEVICES + 1), seed=0)
