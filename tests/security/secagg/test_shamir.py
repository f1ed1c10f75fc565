"""Shamir sharing: any t shares rebuild the secret, t - 1 are consistent with every secret."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.errors import SecureAggregationError
from fedledger.security.secagg import PRIME, Share, combine, split


def _evaluate_through(points: list[tuple[int, int]], x: int) -> int:
    """Value at ``x`` of the unique polynomial of degree < len(points) through ``points``."""
    total = 0
    for i, (xi, yi) in enumerate(points):
        num, den = 1, 1
        for j, (xj, _) in enumerate(points):
            if i != j:
                num = num * (x - xj) % PRIME
                den = den * (xi - xj) % PRIME
        total = (total + yi * num * pow(den, -1, PRIME)) % PRIME
    return total


@settings(max_examples=30, deadline=None)
@given(
    secret=st.binary(min_size=32, max_size=32),
    n=st.integers(1, 8),
    data=st.data(),
)
def test_any_threshold_subset_rebuilds(secret: bytes, n: int, data: st.DataObject) -> None:
    t = data.draw(st.integers(1, n))
    ids = data.draw(st.lists(st.integers(1, 10**6), min_size=n, max_size=n, unique=True))
    shares = split(secret, t, ids)
    for subset in itertools.combinations(shares.values(), t):
        assert combine(subset) == secret
    assert combine(shares.values()) == secret


@settings(max_examples=30, deadline=None)
@given(
    secret=st.binary(min_size=32, max_size=32),
    other=st.binary(min_size=32, max_size=32),
    t=st.integers(2, 6),
)
def test_fewer_than_threshold_are_consistent_with_any_secret(
    secret: bytes, other: bytes, t: int
) -> None:
    shares = split(secret, t, list(range(1, t + 1)))
    known = [shares[x] for x in range(1, t)]  # t - 1 shares
    # A degree t-1 polynomial through (0, other) and the known shares exists, so the known
    # shares plus one more point of it rebuild ``other``: t - 1 shares say nothing.
    points = [(0, int.from_bytes(other, "big"))] + [(s.x, s.y) for s in known]
    forged = Share(t, _evaluate_through(points, t), t, 32)
    assert combine([*known, forged]) == other
    with pytest.raises(SecureAggregationError, match=f"{t - 1} shares available, {t} needed"):
        combine(known)


def test_seeded_split_is_reproducible_and_short_secrets_keep_leading_zeros() -> None:
    secret = b"\x00\x00" + b"\xff" * 30
    a = split(secret, 3, [1, 2, 3, 4], seed=b"s" * 32)
    assert a == split(secret, 3, [1, 2, 3, 4], seed=b"s" * 32)
    assert a != split(secret, 3, [1, 2, 3, 4], seed=b"t" * 32)
    assert combine([a[4], a[2], a[1]]) == secret


def test_threshold_one_shares_are_the_secret() -> None:
    shares = split(b"\x05" * 32, 1, [9])
    assert shares[9].y == int.from_bytes(b"\x05" * 32, "big")


@pytest.mark.parametrize(
    ("secret", "t", "ids"),
    [
        (b"", 1, [1]),
        (b"x" * 66, 1, [1]),
        (b"x", 0, [1]),
        (b"x", 3, [1, 2]),
        (b"x", 1, [0]),
        (b"x", 2, [1, 1]),
    ],
)
def test_invalid_split(secret: bytes, t: int, ids: list[int]) -> None:
    with pytest.raises(SecureAggregationError):
        split(secret, t, ids)


def test_conflicting_shares_are_refused() -> None:
    a = split(b"a" * 32, 2, [1, 2])
    b = split(b"b" * 32, 3, [1, 2, 3])
    with pytest.raises(SecureAggregationError, match="disagree"):
        combine([a[1], b[2]])
    with pytest.raises(SecureAggregationError, match="two different shares"):
        combine([a[1], Share(1, (a[1].y + 1) % PRIME, 2, 32)])
    with pytest.raises(SecureAggregationError, match="no shares"):
        combine([])
