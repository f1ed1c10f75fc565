"""FEMNIST loader: LEAF json shards, one device per writer with training data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fedledger.config import DataConfig
from fedledger.data import build_federated
from fedledger.data.femnist import load_femnist
from fedledger.errors import DataError, DatasetNotFoundError
from tests.data.files import write_text


def _shard(path: Path, users: dict[str, int], pixels: int = 784) -> None:
    rng = np.random.default_rng(len(users))
    data = {
        "users": list(users),
        "num_samples": list(users.values()),
        "user_data": {
            u: {
                "x": rng.random((n, pixels)).round(3).tolist(),
                "y": rng.integers(0, 62, n).tolist(),
            }
            for u, n in users.items()
        },
    }
    write_text(path, json.dumps(data))


def _leaf(folder: Path) -> Path:
    _shard(folder / "train" / "all_data_0_train.json.gz", {"f0001": 6, "f0002": 4})
    _shard(folder / "train" / "all_data_1_train.json", {"f0003": 5})
    _shard(folder / "test" / "all_data_0_test.json.gz", {"f0001": 2, "f0009": 3})
    return folder


def test_writers_are_devices(tmp_path: Path) -> None:
    raw = load_femnist(DataConfig(name="femnist", dir=str(_leaf(tmp_path))))
    assert len(raw.classes) == 62 and raw.classes[10] == "A" and raw.classes[36] == "a"
    assert raw.benign_class is None and raw.image_shape == (1, 28, 28)
    assert len(raw.train) == 15 and raw.test is not None and len(raw.test) == 5
    fed = build_federated(DataConfig(name="femnist", dir=str(tmp_path)), seed=0)
    assert fed.device_names == ("f0001", "f0002", "f0003")
    assert [len(c) for c in fed.clients] == [6, 4, 5]
    assert fed.feature_shape == (1, 28, 28)


def test_wrong_image_size(tmp_path: Path) -> None:
    _shard(tmp_path / "train" / "s.json", {"w": 2}, pixels=780)
    with pytest.raises(DataError, match="784"):
        load_femnist(DataConfig(name="femnist", dir=str(tmp_path)))


def test_corrupt_and_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="train"):
        load_femnist(DataConfig(name="femnist", dir=str(tmp_path)))
    write_text(tmp_path / "train" / "s.json", "{not json")
    with pytest.raises(DataError, match="not LEAF json"):
        load_femnist(DataConfig(name="femnist", dir=str(tmp_path)))


def test_test_shards_without_users_are_refused(tmp_path: Path) -> None:
    _shard(tmp_path / "train" / "a.json", {"f0001": 6, "f0002": 4})
    _shard(tmp_path / "test" / "a.json", {})
    with pytest.raises(DataError, match=r"^dataset femnist has an empty test split [^\n]*$"):
        build_federated(DataConfig(name="femnist", dir=str(tmp_path), clients=2), seed=0)
