"""The dataset registry is an explicit dict and rejects unknown names with the known list."""

from __future__ import annotations

import dataclasses

import pytest

from fedledger.data import DATASETS, DatasetSpec, get_dataset
from fedledger.errors import RegistryError

EXPECTED = {
    "synthetic", "digits", "nsl-kdd", "n-baiot", "unsw-nb15", "ton-iot", "cic-iot2023",
    "mnist", "femnist", "csv", "npz",
}


def test_registry_names() -> None:
    assert set(DATASETS) == EXPECTED
    for name, spec in DATASETS.items():
        assert spec.name == name
        assert spec.needs in {"dir", "path", "nothing"}
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
