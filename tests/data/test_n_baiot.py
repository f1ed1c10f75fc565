"""N-BaIoT loader: UCI per-device folders and the single labelled CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedledger.config import DataConfig
from fedledger.data import build_federated
from fedledger.data.n_baiot import load_n_baiot
from fedledger.errors import DataError, DatasetNotFoundError
from tests.data.files import feature_csv, write_text

F = 6  # the real files have 115 features; the loader takes whatever the header lists


def _uci(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    write_text(folder / "Doorbell" / "benign_traffic.csv", feature_csv(rng, 30, F))
    write_text(folder / "Doorbell" / "gafgyt_attacks" / "scan.csv.gz", feature_csv(rng, 10, F))
    write_text(folder / "Doorbell" / "mirai_attacks" / "udp.csv", feature_csv(rng, 10, F))
    write_text(folder / "Thermostat" / "benign_traffic.csv.gz", feature_csv(rng, 20, F))
    write_text(folder / "Thermostat" / "mirai_attacks" / "syn.csv", feature_csv(rng, 8, F))
    return folder


def _labelled(path: Path) -> Path:
    rng = np.random.default_rng(0)
    text = feature_csv(
        rng,
        40,
        F,
        {
            "device": ["Danmini_Doorbell"] * 3 + ["Ecobee_Thermostat"],
            "botnet": ["none", "gafgyt", "none", "mirai"],
            "attack": ["benign", "scan", "benign", "udp"],
            "label": ["0", "1", "0", "1"],
            "source": ["x"],
            "row_in_source": ["1"],
        },
    )
    return write_text(path, text)


def test_uci_layout(tmp_path: Path) -> None:
    raw = load_n_baiot(DataConfig(name="n-baiot", dir=str(_uci(tmp_path))))
    assert raw.classes == ("benign", "gafgyt_scan", "mirai_syn", "mirai_udp")
    assert raw.benign_class == 0 and raw.test is None and len(raw.train) == 78
    assert raw.train.groups is not None
    assert sorted(set(raw.train.groups.tolist())) == ["Doorbell", "Thermostat"]
    assert raw.train.numeric.shape[1] == F


def test_labelled_csv_path_and_dir(tmp_path: Path) -> None:
    path = _labelled(tmp_path / "n_baiot_subset_labeled.csv.gz")
    by_path = load_n_baiot(DataConfig(name="n-baiot", path=str(path)))
    by_dir = load_n_baiot(DataConfig(name="n-baiot", dir=str(tmp_path)))
    assert by_path.classes == by_dir.classes == ("benign", "gafgyt_scan", "mirai_udp")
    assert by_path.numeric_names == tuple(f"f{j}" for j in range(F))
    np.testing.assert_array_equal(by_path.train.labels, by_dir.train.labels)
    fed = build_federated(DataConfig(name="n-baiot", path=str(path)), seed=0)
    assert fed.device_names == ("Danmini_Doorbell", "Ecobee_Thermostat")
    assert fed.clusters == fed.device_names


def test_mismatched_headers(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    write_text(tmp_path / "D" / "benign_traffic.csv", feature_csv(rng, 5, F))
    write_text(tmp_path / "D" / "gafgyt_attacks" / "tcp.csv", feature_csv(rng, 5, F + 1))
    with pytest.raises(DataError, match="different columns"):
        load_n_baiot(DataConfig(name="n-baiot", dir=str(tmp_path)))


def test_empty_and_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="benign_traffic"):
        load_n_baiot(DataConfig(name="n-baiot", dir=str(tmp_path)))
    with pytest.raises(DatasetNotFoundError):
        load_n_baiot(DataConfig(name="n-baiot", dir=str(tmp_path / "nope")))
