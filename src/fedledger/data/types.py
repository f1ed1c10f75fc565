"""Containers that carry a dataset from its files to the simulated devices.

A loader returns a :class:`RawDataset` (rows as read, before any statistics are taken);
:func:`fedledger.data.build_federated` partitions it across devices, fits preprocessing from
per-device sums and returns a :class:`FederatedDataset`, which is what the engine trains on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["FeatureDomain", "FederatedDataset", "RawDataset", "Table"]


@dataclass(frozen=True)
class Table:
    """One split of a dataset, as read from its files.

    Attributes
    ----------
    numeric
        float64 ``[N, F_num]`` numeric features (for images: flattened pixels in [0, 1]).
    categorical
        ``[N, F_cat]`` array of ``str`` values (``F_cat`` may be 0).
    labels
        int64 ``[N]`` class indices into :attr:`RawDataset.classes`.
    groups
        ``[N]`` natural device key per row (device name, sensor, writer id), or None.
    """

    numeric: np.ndarray
    categorical: np.ndarray
    labels: np.ndarray
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class RawDataset:
    """A dataset as loaded, before partitioning and preprocessing.

    ``test`` is None when the files have no test split; :func:`build_federated` then holds out
    ``data.test_fraction`` of the rows. ``kind`` decides preprocessing: ``tabular`` features are
    scaled and one-hot encoded from per-device statistics, ``image`` pixels are used as they are
    (reshaped to ``image_shape``), ``arrays`` (the npz format) are used exactly as given.
    """

    name: str
    kind: Literal["tabular", "image", "arrays"]
    classes: tuple[str, ...]
    train: Table
    test: Table | None
    numeric_names: tuple[str, ...] = ()
    categorical_names: tuple[str, ...] = ()
    image_shape: tuple[int, ...] | None = None
    benign_class: int | None = 0
    synthetic: bool = False
    group_clusters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureDomain:
    """The range of values real rows give each column of a tabular feature matrix, and its
    one-hot group.

    Attributes
    ----------
    low, high
        float32 ``[F]``: each column's smallest and largest value over the training rows.
    groups
        int64 ``[F]``: ``-1`` for a numeric column, else the index of the categorical feature
        whose one-hot encoding the column belongs to (a row sets at most one column of a
        group).
    """

    low: np.ndarray
    high: np.ndarray
    groups: np.ndarray

    def group_of(self, column: int) -> np.ndarray:
        """The columns of ``column``'s one-hot group (``[column]`` for a numeric column)."""
        g = int(self.groups[column])
        if g < 0:
            return np.array([column], dtype=np.int64)
        return np.flatnonzero(self.groups == g).astype(np.int64)


@dataclass(frozen=True)
class FederatedDataset:
    """Preprocessed arrays and the rows each simulated device owns.

    Attributes
    ----------
    x_train, y_train
        float32 ``[N, *feature_shape]`` and int64 ``[N]``.
    clients
        One int64 index array into ``x_train`` per device (never empty).
    clusters
        One cluster name per device (device type, site or ``"default"``).
    device_names
        One stable name per device (the natural key for ``column`` partitions).
    x_test, y_test
        Held-out evaluation arrays, preprocessed with the statistics of the training devices.
    feature_names
        One name per feature column (``name=value`` for a one-hot column), or empty.
    feature_groups
        Per feature column, ``-1`` if numeric, else the index of the categorical feature it
        one-hot encodes (see :class:`FeatureDomain`); empty when there are none.
    benign_class
        Index of the benign/normal class, or None when the task has none (digits).
    nonfinite
        Non-finite feature values (NaN, inf) that preprocessing replaced by 0.
    """

    name: str
    classes: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    clients: tuple[np.ndarray, ...]
    clusters: tuple[str, ...]
    device_names: tuple[str, ...]
    x_test: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...] = ()
    feature_groups: tuple[int, ...] = ()
    benign_class: int | None = 0
    synthetic: bool = False
    nonfinite: int = 0

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    def feature_domain(self) -> FeatureDomain | None:
        """The range of every feature over the training rows and its one-hot group, for
        ``[N, F]`` features (``None`` for images); without :attr:`feature_groups` every column
        counts as numeric."""
        if self.x_train.ndim != 2 or len(self.x_train) == 0:
            return None
        width = self.x_train.shape[1]
        groups = np.full(width, -1, dtype=np.int64)
        if len(self.feature_groups) == width:
            groups = np.asarray(self.feature_groups, dtype=np.int64)
        return FeatureDomain(self.x_train.min(axis=0), self.x_train.max(axis=0), groups)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_clients(self) -> int:
        return len(self.clients)
