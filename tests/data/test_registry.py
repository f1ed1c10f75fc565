"""The dataset registry is an explicit dict and rejects unknown names with the known list."""

from __future__ import annotations

import dataclasses

import pytest

from fedledger.data import DATASETS, DatasetSpec, get_dataset
from fedledger.errors import RegistryError

EXPECTED = {
    "synthetic",
    "digits",
    "nsl-kdd",
    "n-baiot",
    "unsw-nb15",
    "ton-iot",
    "cic-iot2023",
    "mnist",
    "femnist",
    "csv",
    "npz",
}


def test_registry_names() -> None:
    assert set(DATASETS) == EXPECTED
    for name, spec in DATASETS.items():
        assert spec.name == name
        assert spec.needs in {"dir", "path", "dir-or-path", "nothing"}
        assert spec.kind in {"tabular", "image", "arrays"}
        assert spec.description and callable(spec.loader)


def test_spec_is_frozen() -> None:
    spec = get_dataset("synthetic")
    assert isinstance(spec, DatasetSpec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]


def test_unknown_name_lists_known() -> None:
    with pytest.raises(RegistryError) as info:
        get_dataset("kdd99")
    message = str(info.value)
    assert "kdd99" in message and "nsl-kdd" in message and "\n" not in message
    assert isinstance(info.value, KeyError)


def test_needs_says_which_keys_each_loader_accepts() -> None:
    needs = {name: spec.needs for name, spec in DATASETS.items()}
    assert needs == {
        "synthetic": "nothing",
        "digits": "nothing",
        "nsl-kdd": "dir",
        "n-baiot": "dir-or-path",
        "unsw-nb15": "dir",
        "ton-iot": "dir",
        "cic-iot2023": "dir",
        "mnist": "dir-or-path",
        "femnist": "dir",
        "csv": "dir-or-path",
        "npz": "path",
    }


def test_sources_describe_files_not_repository_paths() -> None:
    for spec in DATASETS.values():
        assert spec.source and "../" not in spec.source and "shared/" not in spec.source
    assert get_dataset("nsl-kdd").source == "KDDTrain+.txt and KDDTest+.txt, plain or .gz"
    assert "34" not in get_dataset("cic-iot2023").description
