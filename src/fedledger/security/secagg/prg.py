"""The mask generator: ChaCha20 keystream expanded into ring elements (Bell et al. 2020, §3).

SecAgg+ masks are ``PRG(seed)`` for a 32-byte seed; here the PRG is the ChaCha20 stream cipher
(RFC 8439) keyed by the seed, with an all-zero 16-byte nonce (counter and nonce), read as
little-endian words. A seed is only ever expanded into one mask, so the fixed nonce never repeats
a (key, nonce) pair across purposes. Rings of up to 2^32 elements draw 4 bytes per element, larger
rings 8, and the word is reduced mod ``M = 2^modulus_bits`` by masking.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from fedledger.errors import SecureAggregationError
from fedledger.security.secagg.fixed_point import ring_mask

__all__ = ["SEED_SIZE", "expand", "keystream"]

SEED_SIZE: Final = 32
_NONCE: Final = bytes(16)


def keystream(seed: bytes, n_bytes: int) -> bytes:
    """The first ``n_bytes`` of the ChaCha20 keystream for key ``seed`` and an all-zero nonce."""
    if len(seed) != SEED_SIZE:
        raise SecureAggregationError(f"a PRG seed must be {SEED_SIZE} bytes, got {len(seed)}")
    if n_bytes < 0:
        raise SecureAggregationError(f"n_bytes must be >= 0, got {n_bytes}")
    encryptor = Cipher(algorithms.ChaCha20(seed, _NONCE), mode=None).encryptor()
    return encryptor.update(bytes(n_bytes))


def expand(seed: bytes, n: int, modulus_bits: int = 64) -> npt.NDArray[np.uint64]:
    """``n`` pseudo-random elements of Z_M, ``M = 2^modulus_bits``, from a 32-byte seed.

    Parameters
    ----------
    seed
        32-byte ChaCha20 key; the same seed always gives the same mask.
    n
        Number of ring elements.
    modulus_bits
        Ring size exponent, 1..64.

    Returns
    -------
    numpy.ndarray
        uint64 array of shape ``(n,)`` with entries uniform in ``0 .. M - 1``.
    """
    mask = ring_mask(modulus_bits)
    if modulus_bits <= 32:
        words = np.frombuffer(keystream(seed, 4 * n), dtype="<u4").astype(np.uint64)
    else:
        words = np.frombuffer(keystream(seed, 8 * n), dtype="<u8").astype(np.uint64)
    if modulus_bits not in (32, 64):
        words &= mask
    return words
