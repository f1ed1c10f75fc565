"""From ``[data]`` config to a :class:`FederatedDataset`: load, hold out, partition, preprocess.

Preprocessing statistics are the merge of one :class:`~fedledger.data.preprocess.ClientStats`
per simulated device, computed on that device's rows only; the test split is transformed with
those statistics and never contributes to them.
"""

from __future__ import annotations

import dataclasses
from functools import reduce

import numpy as np

from fedledger.config import DataConfig
from fedledger.data.partition import (
    partition_column,
    partition_dirichlet,
    partition_iid,
    partition_quantity,
    partition_shards,
)
from fedledger.data.preprocess import ClientStats, Preprocessor
from fedledger.data.registry import load_dataset
from fedledger.data.types import FederatedDataset, RawDataset, Table
from fedledger.errors import DataError

__all__ = ["build_federated", "holdout", "partition_rows"]


def _take(table: Table, rows: np.ndarray) -> Table:
    groups = table.groups[rows] if table.groups is not None else None
    return Table(table.numeric[rows], table.categorical[rows], table.labels[rows], groups)


def holdout(table: Table, fraction: float, seed: int) -> tuple[Table, Table]:
    """Stratified, seeded split: about ``fraction`` of each class goes to the test table.

    Classes with a single row stay in training. Rows keep their original order on both sides.

    Raises
    ------
    DataError
        The table has fewer than two rows.
    """
    n = len(table)
    if n < 2:
        raise DataError(f"cannot hold out a test split from {n} row(s)")
    rng = np.random.default_rng([seed, 7])
    test_mask = np.zeros(n, dtype=bool)
    for k in np.unique(table.labels):
        ids = np.flatnonzero(table.labels == k)
        take = round(fraction * ids.size) if ids.size > 1 else 0
        test_mask[rng.permutation(ids)[:take]] = True
    if not test_mask.any() or test_mask.all():
        test_mask[:] = False
        test_mask[rng.permutation(n)[: max(1, min(n - 1, round(fraction * n)))]] = True
    return _take(table, np.flatnonzero(~test_mask)), _take(table, np.flatnonzero(test_mask))


def _no_groups(name: str) -> DataError:
    return DataError(
        f"dataset {name} has no device column; use data.partition = dirichlet or set data.column"
    )


def _with_column(raw: RawDataset, column: str) -> RawDataset:
    """Use categorical column ``column`` as the device key when the loader gave none."""
    if not column or raw.train.groups is not None:
        return raw
    if column not in raw.categorical_names:
        raise DataError(f"dataset {raw.name} has no categorical column {column!r} for data.column")
    j = raw.categorical_names.index(column)

    def keyed(t: Table) -> Table:
        return dataclasses.replace(t, groups=t.categorical[:, j].astype(str))

    return dataclasses.replace(
        raw, train=keyed(raw.train), test=keyed(raw.test) if raw.test is not None else None
    )


def partition_rows(
    train: Table, cfg: DataConfig, seed: int, name: str
) -> tuple[list[np.ndarray], list[str] | None]:
    """Row indices per device for ``cfg.partition``, and device names for ``column`` partitions.

    ``auto`` means ``column`` when the rows carry a device key, else ``dirichlet``.
    """
    kind = cfg.partition
    if kind == "auto":
        kind = "column" if train.groups is not None else "dirichlet"
    n = len(train)
    if kind == "column":
        if train.groups is None:
            raise _no_groups(name)
        return partition_column(train.groups)
    if kind == "iid":
        return partition_iid(n, cfg.clients, seed), None
    if kind == "dirichlet":
        return partition_dirichlet(train.labels, cfg.clients, cfg.alpha, seed), None
    if kind == "quantity":
        return partition_quantity(n, cfg.clients, cfg.alpha, seed), None
    return partition_shards(train.labels, cfg.clients, cfg.shards_per_client, seed), None


def _refuse_nonfinite(name: str, split: str, values: np.ndarray) -> None:
    """Image and array features are used as given, so NaN/Inf is an error, not replaced."""
    bad = int(values.size - np.count_nonzero(np.isfinite(values)))
    if bad:
        raise DataError(f"dataset {name}: {split} has {bad} NaN/Inf values; clean the arrays")


def _features(
    raw: RawDataset, train: Table, test: Table, parts: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[int, ...], int]:
    if raw.kind != "tabular":
        shape = raw.image_shape or (train.numeric.shape[1],)
        try:
            x = train.numeric.astype(np.float32).reshape(len(train), *shape)
            xt = test.numeric.astype(np.float32).reshape(len(test), *shape)
        except ValueError:
            raise DataError(
                f"dataset {raw.name}: rows of {train.numeric.shape[1]} values do not fit {shape}"
            ) from None
        for split, values in (("x_train", x), ("x_test", xt)):
            _refuse_nonfinite(raw.name, split, values)
        return x, xt, raw.numeric_names if raw.kind == "arrays" else (), (), 0
    n_num, n_cat = train.numeric.shape[1], train.categorical.shape[1]
    per_client = [
        ClientStats(n_num, n_cat).add(train.numeric[rows], train.categorical[rows])
        for rows in parts
    ]
    stats = reduce(ClientStats.merge, per_client)
    pre = Preprocessor.fit(stats, raw.numeric_names, raw.categorical_names)
    x, _ = pre.transform(train.numeric, train.categorical)
    xt, bad = pre.transform(test.numeric, test.categorical)
    return x, xt, pre.feature_names, pre.feature_groups, stats.nonfinite + bad


def _check_test(raw: RawDataset, train: Table, test: Table) -> None:
    if test.numeric.shape[1] != train.numeric.shape[1] or (
        test.categorical.shape[1] != train.categorical.shape[1]
    ):
        raise DataError(
            f"dataset {raw.name}: test rows have {test.numeric.shape[1]} numeric and "
            f"{test.categorical.shape[1]} categorical features, training rows "
            f"{train.numeric.shape[1]} and {train.categorical.shape[1]}"
        )
    if len(test) == 0:
        raise DataError(
            f"dataset {raw.name} has an empty test split (0 rows); supply test rows, or none "
            "at all so data.test_fraction is held out"
        )
    low = min(int(train.labels.min(initial=0)), int(test.labels.min(initial=0)))
    if low < 0:
        raise DataError(f"dataset {raw.name}: negative label {low}; labels must be class indices")
    top = max(int(train.labels.max(initial=0)), int(test.labels.max(initial=0)))
    if top >= len(raw.classes):
        raise DataError(f"dataset {raw.name}: label {top} but only {len(raw.classes)} classes")


def build_federated(cfg: DataConfig, seed: int = 0) -> FederatedDataset:
    """Load ``cfg.name`` and turn it into per-device training rows plus a test split.

    Parameters
    ----------
    cfg
        The ``[data]`` section.
    seed
        Seeds the generator (synthetic), the hold-out split and the partition.

    Raises
    ------
    RegistryError
        Unknown dataset name.
    DatasetNotFoundError, DataError, ConfigError
        Missing files, unreadable data, or a partition that cannot be made. DataError also
        covers data that cannot be trained on: no feature columns, an empty test split, labels
        outside ``0..n_classes - 1``, and NaN/Inf in image or ``arrays`` features (those are
        used as given, so they are refused rather than replaced).
    """
    raw = _with_column(load_dataset(cfg, seed), cfg.column if cfg.name != "csv" else "")
    train, test = raw.train, raw.test
    if test is None:
        train, test = holdout(train, cfg.test_fraction, seed)
    _check_test(raw, train, test)
    if len(train) == 0:
        raise DataError(f"dataset {raw.name} has no training rows")
    if train.numeric.shape[1] + train.categorical.shape[1] == 0:
        raise DataError(
            f"dataset {raw.name} has no feature columns (only the label); check data.label, "
            "data.drop and data.column"
        )
    parts, names = partition_rows(train, cfg, seed, raw.name)
    x, xt, feature_names, feature_groups, nonfinite = _features(raw, train, test, parts)
    if names is None:
        names = [f"dev-{i:03d}" for i in range(len(parts))]
        clusters = ["default"] * len(parts)
    else:
        clusters = [
            raw.group_clusters.get(n, n) if raw.group_clusters else "default" for n in names
        ]
    return FederatedDataset(
        name=raw.name,
        classes=raw.classes,
        x_train=x,
        y_train=train.labels.astype(np.int64),
        clients=tuple(parts),
        clusters=tuple(clusters),
        device_names=tuple(names),
        x_test=xt,
        y_test=test.labels.astype(np.int64),
        feature_names=feature_names,
        feature_groups=feature_groups,
        benign_class=raw.benign_class,
        synthetic=raw.synthetic,
        nonfinite=nonfinite,
    )
