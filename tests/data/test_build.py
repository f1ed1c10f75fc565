"""build_federated: hold-out, partition choice, preprocessing from device sums, device names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedledger.config import DataConfig
from fedledger.data import build_federated
from fedledger.data.build import holdout
from fedledger.data.types import Table
from fedledger.errors import ConfigError, DataError, RegistryError
from tests.data.files import feature_csv, write_text


def _table(n: int, n_classes: int = 3) -> Table:
    rng = np.random.default_rng(0)
    return Table(
        numeric=rng.random((n, 2)),
        categorical=np.zeros((n, 0), str),
        labels=np.arange(n) % n_classes,
        groups=np.array([f"g{i % 4}" for i in range(n)]),
    )


def test_holdout_is_stratified_and_seeded() -> None:
    table = _table(300)
    train, test = holdout(table, 0.2, seed=1)
    assert len(train) + len(test) == 300 and len(test) == 60
    assert np.bincount(test.labels).tolist() == [20, 20, 20]
    again = holdout(table, 0.2, seed=1)[1]
    np.testing.assert_array_equal(test.numeric, again.numeric)
    assert train.groups is not None and len(train.groups) == 240


def test_holdout_needs_two_rows() -> None:
    with pytest.raises(DataError):
        holdout(_table(1), 0.2, 0)


@pytest.mark.parametrize("partition", ["iid", "dirichlet", "quantity", "shards"])
def test_partitions_on_synthetic(partition: str) -> None:
    cfg = DataConfig.model_validate({"name": "synthetic", "clients": 4, "partition": partition})
    fed = build_federated(cfg, seed=0)
    assert fed.n_clients == 4
    assert fed.device_names == ("dev-000", "dev-001", "dev-002", "dev-003")
    assert fed.clusters == ("default",) * 4
    rows = np.sort(np.concatenate(fed.clients))
    np.testing.assert_array_equal(rows, np.arange(len(fed.x_train)))
    assert fed.x_train.shape[1] == len(fed.feature_names) == fed.x_test.shape[1]
    assert np.all(np.abs(fed.x_train) <= 10)


def test_deterministic() -> None:
    cfg = DataConfig(name="synthetic", clients=3, partition="dirichlet")
    a, b = build_federated(cfg, seed=4), build_federated(cfg, seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert all(np.array_equal(x, y) for x, y in zip(a.clients, b.clients, strict=True))


def test_digits_defaults_to_dirichlet() -> None:
    fed = build_federated(DataConfig(name="digits", clients=5), seed=0)
    assert fed.feature_shape == (1, 8, 8) and fed.benign_class is None and fed.n_clients == 5
    assert float(fed.x_train.max()) <= 1.0 and len(fed.x_test) == 360


def test_column_partition_needs_groups() -> None:
    cfg = DataConfig(name="digits", partition="column")
    with pytest.raises(DataError, match=r"no device column; use data.partition = dirichlet"):
        build_federated(cfg, seed=0)


def test_binary_needs_benign() -> None:
    with pytest.raises(ConfigError, match=r"data\.binary"):
        build_federated(DataConfig(name="digits", binary=True), seed=0)


def test_binary_synthetic() -> None:
    fed = build_federated(DataConfig(clients=3, binary=True), seed=0)
    assert fed.classes == ("benign", "attack") and fed.benign_class == 0


def test_unknown_dataset() -> None:
    with pytest.raises(RegistryError, match="unknown dataset 'nope'"):
        build_federated(DataConfig(name="nope"), seed=0)


def test_empty_partition_more_clients_than_rows() -> None:
    with pytest.raises(DataError, match="clients but only"):
        build_federated(DataConfig(name="digits", clients=5000, partition="iid"), seed=0)


def test_csv_column_as_device_and_unseen_test_category(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    text = feature_csv(
        rng, 80, 3, {"site": ["s1", "s2", "s3"], "proto": ["tcp", "udp"], "y": ["benign", "attack"]}
    )
    path = write_text(tmp_path / "d.csv", text)
    cfg = DataConfig(name="csv", path=str(path), label="y", categorical=["proto"], column="site")
    fed = build_federated(cfg, seed=0)
    assert fed.device_names == ("s1", "s2", "s3") and fed.clusters == ("default",) * 3
    assert fed.classes == ("benign", "attack") and fed.benign_class == 0
    assert "proto=<unknown>" in fed.feature_names and "site" not in " ".join(fed.feature_names)


def test_data_column_from_categorical(tmp_path: Path) -> None:
    from tests.data.files import NSL_LABELS, nsl_row

    rng = np.random.default_rng(0)
    rows = [nsl_row(rng, NSL_LABELS[i % 7]) for i in range(70)]
    write_text(tmp_path / "KDDTrain+.txt", "\n".join(rows))
    write_text(tmp_path / "KDDTest+.txt", "\n".join(rows[:10]))
    cfg = DataConfig(name="nsl-kdd", dir=str(tmp_path), column="protocol_type")
    fed = build_federated(cfg, seed=0)
    assert fed.device_names == ("icmp", "tcp", "udp")


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def test_csv_with_only_a_label_column_is_refused(tmp_path: Path) -> None:
    path = write_text(tmp_path / "y.csv", "y\n" + "\n".join("ab"[i % 2] for i in range(40)))
    cfg = DataConfig(name="csv", path=str(path), label="y", clients=2)
    with pytest.raises(DataError, match=r"^dataset csv has no feature columns [^\n]*$"):
        build_federated(cfg, seed=0)


def test_empty_npz_test_split_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = _npz(
        tmp_path / "e.npz",
        x_train=rng.random((40, 3)),
        y_train=rng.integers(0, 2, 40),
        x_test=np.zeros((0, 3)),
        y_test=np.zeros(0, np.int64),
    )
    with pytest.raises(DataError, match=r"^dataset npz has an empty test split [^\n]*$"):
        build_federated(DataConfig(name="npz", path=str(path), clients=2), seed=0)


@pytest.mark.parametrize("split", ["y_train", "y_test"])
def test_negative_labels_are_refused(tmp_path: Path, split: str) -> None:
    rng = np.random.default_rng(0)
    labels = {"y_train": rng.integers(0, 10, 40), "y_test": rng.integers(0, 10, 10)}
    labels[split][3] = -1
    path = _npz(
        tmp_path / "m.npz",
        x_train=rng.random((40, 28, 28)),
        x_test=rng.random((10, 28, 28)),
        **labels,
    )
    with pytest.raises(DataError, match=r"^dataset mnist: negative label -1"):
        build_federated(DataConfig(name="mnist", path=str(path), clients=2), seed=0)


@pytest.mark.parametrize(("split", "bad"), [("x_train", 3), ("x_test", 2)])
def test_non_finite_arrays_are_refused(tmp_path: Path, split: str, bad: int) -> None:
    rng = np.random.default_rng(0)
    x = {"x_train": rng.random((40, 3)), "x_test": rng.random((10, 3))}
    x[split].flat[[0, 4, 8][:bad]] = [np.nan, np.inf, -np.inf][:bad]
    path = _npz(
        tmp_path / "n.npz", y_train=rng.integers(0, 2, 40), y_test=rng.integers(0, 2, 10), **x
    )
    with pytest.raises(DataError, match=rf"^dataset npz: {split} has {bad} NaN/Inf values; clean"):
        build_federated(DataConfig(name="npz", path=str(path), clients=2), seed=0)


def test_non_finite_images_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((40, 28, 28))
    x[5, 3, 3] = np.nan
    path = _npz(
        tmp_path / "m.npz",
        x_train=x,
        y_train=rng.integers(0, 10, 40),
        x_test=rng.random((10, 28, 28)),
        y_test=rng.integers(0, 10, 10),
    )
    with pytest.raises(DataError, match=r"x_train has 1 NaN/Inf values"):
        build_federated(DataConfig(name="mnist", path=str(path), clients=2), seed=0)
