"""Turning label text into class indices, with the benign class first, and the binary collapse."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

from fedledger.data.types import RawDataset, Table
from fedledger.errors import ConfigError

__all__ = ["BENIGN_NAMES", "class_order", "collapse_binary", "encode"]

BENIGN_NAMES = frozenset({"normal", "benign", "benigntraffic"})
"""Label values (compared case-insensitively) that name the benign class."""


def class_order(values: Iterable[str]) -> tuple[tuple[str, ...], int | None]:
    """Sorted distinct labels with the benign one (if any) moved first.

    Returns
    -------
    classes, benign_class
        ``benign_class`` is 0 when a value in :data:`BENIGN_NAMES` is present, else None.
    """
    distinct = sorted({str(v) for v in values})
    benign = [v for v in distinct if v.lower() in BENIGN_NAMES]
    if not benign:
        return tuple(distinct), None
    first = benign[0]
    return (first, *[v for v in distinct if v != first]), 0


def encode(values: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """int64 class index of each label string (every value must be in ``classes``)."""
    lookup = {name: i for i, name in enumerate(classes)}
    uniq, inverse = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    codes = np.array([lookup[str(u)] for u in uniq], dtype=np.int64)
    return codes[inverse.reshape(-1)] if uniq.size else np.zeros(0, dtype=np.int64)


def _binary_table(table: Table, benign: int) -> Table:
    labels = (table.labels != benign).astype(np.int64)
    return dataclasses.replace(table, labels=labels)


def collapse_binary(raw: RawDataset) -> RawDataset:
    """Merge every attack class into one ``"attack"`` class; the benign class stays index 0.

    Raises
    ------
    ConfigError
        The dataset has no benign class (``digits``, ``mnist``, ``femnist``).
    """
    if raw.benign_class is None:
        raise ConfigError(
            "data.binary", f"dataset {raw.name!r} has no benign class to keep apart from attacks"
        )
    b = raw.benign_class
    test = _binary_table(raw.test, b) if raw.test is not None else None
    return dataclasses.replace(
        raw,
        classes=(raw.classes[b], "attack"),
        train=_binary_table(raw.train, b),
        test=test,
        benign_class=0,
    )
