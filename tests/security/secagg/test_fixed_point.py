"""Fixed-point ring encoding: round trip, clipping count, exact sums, wrap-around bound."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.errors import SecureAggregationError
from fedledger.security.secagg import FixedPoint


def test_round_trip_within_half_a_step_and_clipping_count() -> None:
    fp = FixedPoint(clip=2.0, bits=16, modulus_bits=32)
    x = np.array([-3.0, -2.0, -0.1, 0.0, 0.7, 2.0, 5.5], dtype=np.float32)
    enc = fp.encode(x)
    assert enc.clipped == 2
    assert enc.values.dtype == np.uint64
    assert int(enc.values.min()) == 0 and int(enc.values.max()) == (1 << 16) - 1
    back = fp.decode_sum(enc.values, 1)
    expected = np.clip(x.astype(np.float64), -2.0, 2.0)
    assert np.max(np.abs(back - expected)) <= 0.5 / fp.scale + 1e-12
    assert np.array_equal(back, fp.quantise(x))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 30),
    dim=st.integers(1, 50),
    modulus_bits=st.sampled_from([24, 32, 48, 64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_ring_sum_is_the_exact_integer_sum(n: int, dim: int, modulus_bits: int, seed: int) -> None:
    fp = FixedPoint(clip=1.5, bits=16, modulus_bits=modulus_bits)
    rng = np.random.default_rng(seed)
    xs = rng.normal(0.0, 1.0, (n, dim)).astype(np.float32)
    ring = np.zeros(dim, dtype=np.uint64)
    exact = np.zeros(dim, dtype=object)
    for x in xs:
        ring += fp.encode(x).values
        exact += fp.encode(x).values.astype(object)
    ring &= fp.mask
    assert [int(v) for v in ring] == list(exact)
    decoded = fp.decode_sum(ring, n)
    plain = np.sum([fp.quantise(x) for x in xs], axis=0)
    np.testing.assert_allclose(decoded, plain, rtol=0, atol=1e-9 * n)


def test_bound_on_devices_is_enforced() -> None:
    fp = FixedPoint(clip=1.0, bits=8, modulus_bits=16)
    assert fp.max_devices == 257  # 257 * 255 = 65535 < 65536
    fp.check_devices(257)
    with pytest.raises(SecureAggregationError, match="wraps"):
        fp.decode_sum(np.zeros(3, dtype=np.uint64), 258)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"clip": 0.0},
        {"clip": float("inf")},
        {"clip": 1.0, "bits": 32, "modulus_bits": 32},
        {"clip": 1.0, "modulus_bits": 65},
    ],
)
def test_invalid_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(SecureAggregationError):
        FixedPoint(**kwargs)  # type: ignore[arg-type]


def test_non_finite_input_is_refused() -> None:
    with pytest.raises(SecureAggregationError, match="NaN"):
        FixedPoint(clip=1.0).encode(np.array([0.0, np.nan]))
