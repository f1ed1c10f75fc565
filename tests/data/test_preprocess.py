"""Preprocessing from per-device sums: merging summaries equals summarising pooled rows."""

from __future__ import annotations

import numpy as np

from fedledger.data.preprocess import ClientStats, Preprocessor, signed_log1p


def _rows(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    numeric = rng.lognormal(2.0, 2.0, size=(n, 4)) * rng.choice([-1, 1], size=(n, 4))
    categorical = rng.choice(["tcp", "udp", "icmp"], size=(n, 1)).astype(str)
    return numeric, categorical


def test_merge_equals_stats_of_concatenation() -> None:
    parts = [_rows(s, n) for s, n in ((0, 30), (1, 5), (2, 70))]
    merged = ClientStats(4, 1)
    for num, cat in parts:
        merged = merged.merge(ClientStats(4, 1).add(num, cat))
    pooled = ClientStats(4, 1).add(
        np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    )
    assert merged.count == pooled.count == 105
    np.testing.assert_allclose(merged.total, pooled.total)
    np.testing.assert_allclose(merged.total_sq, pooled.total_sq)
    np.testing.assert_allclose(merged.mean, pooled.mean)
    np.testing.assert_allclose(merged.std, pooled.std)
    assert merged.categories == pooled.categories
    x = signed_log1p(np.concatenate([p[0] for p in parts]))
    np.testing.assert_allclose(merged.mean, x.mean(axis=0))
    np.testing.assert_allclose(merged.std, x.std(axis=0))


def test_merge_leaves_inputs_unchanged() -> None:
    a = ClientStats(4, 1).add(*_rows(0, 10))
    b = ClientStats(4, 1).add(*_rows(1, 10))
    before = a.total.copy()
    a.merge(b)
    np.testing.assert_array_equal(a.total, before)
    assert a.count == 10


def test_transform_zscore_onehot_and_unknown_bucket() -> None:
    num, cat = _rows(0, 50)
    pre = Preprocessor.fit(ClientStats(4, 1).add(num, cat), ("a", "b", "c", "d"), ("proto",))
    assert pre.vocab == (("icmp", "tcp", "udp"),)
    assert pre.feature_names[4:] == ("proto=icmp", "proto=tcp", "proto=udp", "proto=<unknown>")
    x, bad = pre.transform(num, cat)
    assert x.dtype == np.float32 and x.shape == (50, 8) and bad == 0
    np.testing.assert_allclose(x[:, :4].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x[:, 4:].sum(axis=1), 1.0)
    test_x, _ = pre.transform(num[:3], np.array([["sctp"], ["tcp"], [""]]))
    assert test_x[0, 4:].tolist() == [0, 0, 0, 1]
    assert test_x[1, 4:].tolist() == [0, 1, 0, 0]
    assert test_x[2, 4:].tolist() == [0, 0, 0, 0]  # "" = feature absent


def test_std_floor_and_clip() -> None:
    const = np.ones((10, 1))
    pre = Preprocessor.fit(ClientStats(1, 0).add(const, np.zeros((10, 0), str)))
    assert pre.std[0] == 1e-6
    x, _ = pre.transform(np.array([[1.0], [1e9], [-1e9]]), np.zeros((3, 0), str))
    assert x[:, 0].tolist() == [0.0, 10.0, -10.0]


def test_non_finite_replaced_and_counted() -> None:
    num = np.array([[1.0, np.nan], [np.inf, 2.0], [3.0, -np.inf]])
    stats = ClientStats(2, 0).add(num, np.zeros((3, 0), str))
    assert stats.nonfinite == 3
    assert np.all(np.isfinite(stats.mean)) and np.all(np.isfinite(stats.std))
    x, bad = Preprocessor.fit(stats).transform(num, np.zeros((3, 0), str))
    assert bad == 3 and np.all(np.isfinite(x))
