"""The plain-f32 payload: exact round trip, zero-copy decode, refusal of bad lengths and NaN/Inf."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fedledger.errors import EnvelopeError, FedledgerError
from fedledger.security import PLAIN_F32, decode_f32, encode_f32

finite_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(hnp.arrays(np.float32, st.integers(0, 300), elements=finite_f32))
def test_round_trip_is_bit_exact(update: np.ndarray) -> None:
    payload = encode_f32(update)
    assert len(payload) == 4 * update.size
    out = decode_f32(payload, update.size)
    assert out.dtype == np.dtype("<f4")
    assert out.tobytes() == update.astype("<f4").tobytes()


def test_encoding_is_little_endian_and_decode_shares_memory() -> None:
    assert PLAIN_F32 == "plain-f32"
    assert encode_f32(np.array([1.0], dtype=np.float32)) == b"\x00\x00\x80\x3f"
    big = np.array([1.0, -2.5], dtype=">f4")
    assert encode_f32(big) == encode_f32(np.array([1.0, -2.5], dtype=np.float32))
    payload = encode_f32(np.arange(1000, dtype=np.float32))
    out = decode_f32(payload, None)
    assert np.shares_memory(out, np.frombuffer(payload, dtype=np.uint8))
    assert not out.flags.writeable


@pytest.mark.parametrize(
    "update",
    [
        np.zeros(3, dtype=np.float64),
        np.zeros((2, 2), dtype=np.float32),
        [1.0, 2.0],
    ],
)
def test_encode_refuses_non_float32_vectors(update: object) -> None:
    with pytest.raises(EnvelopeError) as info:
        encode_f32(update)  # type: ignore[arg-type]
    assert info.value.reason == "malformed"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [(b"\x00" * 7, None), (b"\x00" * 8, 3), (b"", 1), (b"\x00" * 4, 0)],
)
def test_decode_refuses_bad_lengths(payload: bytes, expected: int | None) -> None:
    with pytest.raises(EnvelopeError) as info:
        decode_f32(payload, expected)
    assert info.value.reason == "malformed"
    assert isinstance(info.value, FedledgerError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 500, 999])
def test_decode_refuses_non_finite_values(bad: float, where: int) -> None:
    update = np.ones(1000, dtype=np.float32)
    update[where] = bad
    payload = encode_f32(update)  # encoding does not judge; the receiver does
    with pytest.raises(EnvelopeError) as info:
        decode_f32(payload, 1000)
    assert info.value.reason == "non-finite"


def test_largest_finite_values_are_accepted() -> None:
    edge = np.array([np.finfo(np.float32).max, -np.finfo(np.float32).max, 1e-45], np.float32)
    assert np.array_equal(decode_f32(encode_f32(edge), 3), edge)
