"""Partitioners: every row exactly once, no empty client, same seed same split."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.data.partition import (
    check_partition,
    partition_column,
    partition_dirichlet,
    partition_iid,
    partition_quantity,
    partition_shards,
)
from fedledger.errors import DataError


def _is_partition(parts: list[np.ndarray], n: int) -> None:
    assert all(p.size > 0 for p in parts)
    assert all(p.dtype == np.int64 for p in parts)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(n))


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


rows_clients = st.integers(1, 30).flatmap(
    lambda k: st.tuples(st.integers(k, 400), st.just(k), st.integers(0, 2**16))
)


@settings(max_examples=40, deadline=None)
@given(rows_clients)
def test_iid(case: tuple[int, int, int]) -> None:
    n, k, seed = case
    parts = partition_iid(n, k, seed)
    _is_partition(parts, n)
    assert len(parts) == k and max(p.size for p in parts) - min(p.size for p in parts) <= 1
    assert _same(parts, partition_iid(n, k, seed))


@settings(max_examples=40, deadline=None)
@given(rows_clients, st.floats(0.05, 10.0))
def test_quantity(case: tuple[int, int, int], alpha: float) -> None:
    n, k, seed = case
    parts = partition_quantity(n, k, alpha, seed)
    _is_partition(parts, n)
    assert len(parts) == k
    assert _same(parts, partition_quantity(n, k, alpha, seed))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 10), st.integers(2, 6), st.integers(0, 2**16), st.floats(0.3, 5.0))
def test_dirichlet(k: int, n_labels: int, seed: int, alpha: float) -> None:
    labels = np.random.default_rng(seed).integers(0, n_labels, size=50 * k + 20)
    parts = partition_dirichlet(labels, k, alpha, seed)
    _is_partition(parts, labels.size)
    assert len(parts) == k
    assert _same(parts, partition_dirichlet(labels, k, alpha, seed))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 10), st.integers(1, 4), st.integers(0, 2**16))
def test_shards(k: int, per: int, seed: int) -> None:
    labels = np.random.default_rng(seed).integers(0, 10, size=k * per * 7 + 3)
    parts = partition_shards(labels, k, per, seed)
    _is_partition(parts, labels.size)
    assert _same(parts, partition_shards(labels, k, per, seed))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["b", "a", "c", "d"]), min_size=1, max_size=80))
def test_column(values: list[str]) -> None:
    groups = np.array(values)
    parts, names = partition_column(groups)
    _is_partition(parts, len(values))
    assert names == sorted(set(values))
    for part, name in zip(parts, names, strict=True):
        assert np.all(groups[part] == name) and np.all(np.diff(part) > 0)


def test_column_int_groups_sorted_numerically() -> None:
    parts, names = partition_column(np.array([10, 2, 2, 10, 1]))
    assert names == ["1", "2", "10"]
    assert [p.tolist() for p in parts] == [[4], [1, 2], [0, 3]]


def test_shards_are_label_skewed() -> None:
    labels = np.repeat(np.arange(10), 100)
    parts = partition_shards(labels, 10, 2, seed=0)
    assert max(len(np.unique(labels[p])) for p in parts) <= 4


def test_dirichlet_skew_grows_as_alpha_shrinks() -> None:
    labels = np.repeat(np.arange(5), 400)

    def skew(alpha: float) -> float:
        parts = partition_dirichlet(labels, 10, alpha, seed=0)
        fracs = [np.bincount(labels[p], minlength=5) / p.size for p in parts]
        return float(np.mean([f.max() for f in fracs]))

    assert skew(0.1) > skew(100.0)


def test_more_clients_than_rows() -> None:
    labels = np.zeros(3, np.int64)
    with pytest.raises(DataError, match=r"lower data\.clients"):
        partition_iid(3, 5, 0)
    with pytest.raises(DataError, match=r"lower data\.clients"):
        partition_quantity(3, 5, 0.5, 0)
    with pytest.raises(DataError, match=r"lower data\.clients"):
        partition_dirichlet(labels, 5, 0.5, 0)
    with pytest.raises(DataError, match=r"lower data\.clients"):
        partition_shards(labels, 5, 1, 0)


def test_dirichlet_gives_up_with_message() -> None:
    labels = np.repeat(np.arange(2), 50)
    with pytest.raises(DataError, match=r"raise data\.alpha"):
        partition_dirichlet(labels, 10, 0.01, seed=0, min_size=10)


def test_empty_client_rejected() -> None:
    with pytest.raises(DataError, match="empty partition"):
        check_partition([np.arange(3), np.zeros(0, np.int64)], 3)
    with pytest.raises(DataError, match="exactly once"):
        check_partition([np.arange(3), np.array([2])], 3)


def test_dirichlet_tiny_alpha_needs_only_one_row_per_client() -> None:
    labels = np.arange(2000) % 6  # 20 clients, alpha 0.05: a 10-row floor is out of reach
    with pytest.raises(DataError, match=">= 10 rows"):
        partition_dirichlet(labels, 20, 0.05, seed=1, min_size=10)
    parts = partition_dirichlet(labels, 20, 0.05, seed=1)
    assert len(parts) == 20 and min(p.size for p in parts) >= 1
    assert _same(parts, partition_dirichlet(labels, 20, 0.05, seed=1))


def test_dirichlet_default_floor_falls_back_to_one_row() -> None:
    labels = np.arange(2000) % 2  # alpha 0.1, two classes: no draw gives every client 10 rows
    with pytest.raises(DataError, match=">= 10 rows"):
        partition_dirichlet(labels, 20, 0.1, seed=0, min_size=10)
    parts = partition_dirichlet(labels, 20, 0.1, seed=0)
    assert len(parts) == 20 and min(p.size for p in parts) >= 1
    check_partition(parts, 2000)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dirichlet_default_alpha_keeps_the_ten_row_floor(seed: int) -> None:
    labels = np.arange(5000) % 7
    default = partition_dirichlet(labels, 20, 0.5, seed)
    assert _same(default, partition_dirichlet(labels, 20, 0.5, seed, min_size=10))
