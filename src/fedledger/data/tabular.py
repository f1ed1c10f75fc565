"""Labelled CSV files with a header: split columns into numeric, categorical, label and device.

Shared by the ``csv``, ``unsw-nb15``, ``ton-iot``, ``cic-iot2023`` and labelled ``n-baiot``
loaders. Files with different columns are either rejected (:func:`concat`) or merged into the
union feature space (``union=True``: absent numeric features are 0, absent categorical ones
are the empty string, which one-hot encodes as all zeros).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedledger.data.csvio import CsvFile, read_csv
from fedledger.data.labels import class_order, encode
from fedledger.data.types import RawDataset, Table
from fedledger.errors import DataError

__all__ = [
    "Columns",
    "column_index",
    "concat",
    "read_labelled",
    "single_split_dataset",
    "to_table",
]


@dataclass(frozen=True)
class Columns:
    """The columns of one or more labelled files, before labels become class indices."""

    numeric: np.ndarray
    categorical: np.ndarray
    label_text: np.ndarray
    groups: np.ndarray | None
    numeric_names: tuple[str, ...]
    categorical_names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.label_text.shape[0])


def column_index(header: Sequence[str], name: str, path: Path) -> int:
    """Position of ``name`` in ``header`` (exact match first, then case-insensitive)."""
    if name in header:
        return list(header).index(name)
    lowered = [h.lower() for h in header]
    if name.lower() in lowered:
        return lowered.index(name.lower())
    shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
    raise DataError(f"{path}: no column {name!r} (columns: {shown})")


def _infer_numeric(data: CsvFile, cols: list[int]) -> tuple[list[int], list[int]]:
    try:
        data.numeric(cols)
        return cols, []
    except DataError:
        pass
    numeric: list[int] = []
    strings: list[int] = []
    for col in cols:
        try:
            data.numeric([col])
            numeric.append(col)
        except DataError:
            strings.append(col)
    return numeric, strings


def read_labelled(
    path: Path,
    *,
    label: str,
    categorical: Sequence[str] = (),
    drop: Sequence[str] = (),
    group: str = "",
    infer: bool = False,
) -> Columns:
    """Read one CSV with a header row.

    Parameters
    ----------
    path
        The file (plain or ``.gz``).
    label
        Name of the label column.
    categorical
        Columns to one-hot encode; every other kept column must be numeric, unless ``infer``.
    drop
        Columns to ignore (silently skipped when absent).
    group
        Column naming the device of each row, kept out of the features; ``""`` for none.
    infer
        Treat any column that does not parse as numbers as categorical.
    """
    data = read_csv(path, header=True)
    header = data.header or ()
    label_col = column_index(header, label, path)
    group_col = column_index(header, group, path) if group else -1
    dropped = {h.lower() for h in drop}
    cat_cols = [column_index(header, c, path) for c in categorical if c.lower() not in dropped]
    skip = {label_col, group_col, *cat_cols}
    rest = [i for i, h in enumerate(header) if i not in skip and h.lower() not in dropped]
    if infer:
        rest, extra = _infer_numeric(data, rest)
        cat_cols = cat_cols + extra
    text = data.strings([label_col, *([group_col] if group else []), *cat_cols])
    return Columns(
        numeric=data.numeric(rest),
        categorical=text[:, 2:] if group else text[:, 1:],
        label_text=text[:, 0],
        groups=text[:, 1] if group else None,
        numeric_names=tuple(header[i] for i in rest),
        categorical_names=tuple(header[i] for i in cat_cols),
    )


def _names_union(parts: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for names in parts:
        seen.update(dict.fromkeys(names))
    return tuple(seen)


def _widen(
    values: np.ndarray, have: tuple[str, ...], want: tuple[str, ...], fill: float | str
) -> np.ndarray:
    dtype = np.float64 if isinstance(fill, float) else object
    out = np.full((values.shape[0], len(want)), fill, dtype=dtype)
    pos = {n: i for i, n in enumerate(have)}
    for j, name in enumerate(want):
        if name in pos:
            out[:, j] = values[:, pos[name]]
    return out


def concat(parts: Sequence[Columns], *, union: bool = False) -> Columns:
    """Stack several files' columns.

    Raises
    ------
    DataError
        The files have different columns and ``union`` is False.
    """
    if not parts:
        raise DataError("no rows to combine")
    num_names = _names_union([p.numeric_names for p in parts])
    cat_names = _names_union([p.categorical_names for p in parts])
    if not union:
        for p in parts:
            if p.numeric_names != num_names or p.categorical_names != cat_names:
                raise DataError(
                    f"files have different columns: {len(p.numeric_names)} numeric vs "
                    f"{len(num_names)} expected; use files with one header"
                )
    numeric = np.concatenate(
        [_widen(p.numeric, p.numeric_names, num_names, 0.0) for p in parts]
    ).astype(np.float64)
    categorical = np.concatenate(
        [_widen(p.categorical, p.categorical_names, cat_names, "") for p in parts]
    ).astype(str)
    groups = None
    if all(p.groups is not None for p in parts):
        groups = np.concatenate([p.groups for p in parts if p.groups is not None]).astype(str)
    return Columns(
        numeric=numeric,
        categorical=categorical.reshape(len(numeric), len(cat_names)),
        label_text=np.concatenate([p.label_text for p in parts]).astype(str),
        groups=groups,
        numeric_names=num_names,
        categorical_names=cat_names,
    )


def to_table(cols: Columns, labels: np.ndarray) -> Table:
    """A :class:`Table` from the columns and already-encoded labels."""
    return Table(
        numeric=cols.numeric,
        categorical=cols.categorical,
        labels=labels,
        groups=cols.groups,
    )


def single_split_dataset(
    name: str, cols: Columns, group_clusters: dict[str, str] | None = None
) -> RawDataset:
    """A tabular :class:`RawDataset` from labelled columns that have no test split.

    Classes are ordered benign first (when there is a benign class), then by name;
    :func:`fedledger.data.build_federated` holds out ``data.test_fraction`` of the rows.
    """
    classes, benign = class_order(cols.label_text)
    return RawDataset(
        name=name,
        kind="tabular",
        classes=classes,
        train=to_table(cols, encode(cols.label_text, classes)),
        test=None,
        numeric_names=cols.numeric_names,
        categorical_names=cols.categorical_names,
        benign_class=benign,
        group_clusters=group_clusters or {},
    )
