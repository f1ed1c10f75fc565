"""The mask PRG is ChaCha20 (RFC 8439) keyed by the seed, and deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from fedledger.errors import SecureAggregationError
from fedledger.security.secagg import expand, keystream


def _chacha(seed: bytes, n_bytes: int) -> bytes:
    encryptor = Cipher(algorithms.ChaCha20(seed, bytes(16)), mode=None).encryptor()
    return encryptor.update(bytes(n_bytes))


def test_keystream_is_chacha20() -> None:
    seed = bytes(range(32))
    assert keystream(seed, 1000) == _chacha(seed, 1000)


def test_rfc8439_keystream_vector() -> None:
    # RFC 8439 §2.4.2 key; block counter 0 of the all-zero-nonce stream (RFC 7539 A.1 #1).
    first = keystream(bytes(32), 64)
    assert first.hex().startswith(
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
    )


def test_expand_words_and_moduli() -> None:
    seed = b"\x07" * 32
    raw = _chacha(seed, 8 * 10)
    assert expand(seed, 10, 64).tolist() == np.frombuffer(raw, "<u8").tolist()
    assert expand(seed, 10, 32).tolist() == np.frombuffer(raw[:40], "<u4").tolist()
    low = expand(seed, 10, 20)
    assert low.tolist() == [w & 0xFFFFF for w in np.frombuffer(raw[:40], "<u4").tolist()]
    assert low.dtype == np.uint64


def test_deterministic_and_seed_sensitive() -> None:
    a = expand(b"a" * 32, 5000)
    assert np.array_equal(a, expand(b"a" * 32, 5000))
    assert not np.array_equal(a, expand(b"b" * 32, 5000))
    assert np.array_equal(expand(b"a" * 32, 100), a[:100])


def test_bad_seed_length() -> None:
    with pytest.raises(SecureAggregationError, match="32 bytes"):
        expand(b"short", 4)
