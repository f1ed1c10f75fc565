"""CKKS homomorphic encryption of updates (TenSEAL): devices encrypt, the aggregator adds
ciphertexts, and only the key holder (the enclave) decrypts the sum.

CKKS (Cheon, Kim, Kim, Song, "Homomorphic Encryption for Arithmetic of Approximate Numbers",
ASIACRYPT 2017) packs ``poly_modulus_degree / 2`` real numbers into one ciphertext; adding
ciphertexts adds the vectors, with an approximation error around ``2^-scale_bits`` times their
magnitude. An update is split into chunks of that many slots.

The encoding of a protected payload is explicit (no pickle): a 4-byte big-endian chunk count,
then for each chunk a 4-byte length and TenSEAL's serialised ciphertext (SEAL's own format).
With ``selected`` layer ranges only those coordinates are encrypted; the rest travel in clear.

Examples
--------
>>> keys = CkksKeys()
>>> public = keys.public_context()              # what devices and the aggregator receive
>>> ctx = public_context_from(public)
>>> a, b = encrypt_update(ctx, x1), encrypt_update(ctx, x2)
>>> total = keys.decrypt(add_payloads(ctx, [a, b]), len(x1))   # ≈ x1 + x2
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import tenseal as ts

from fedledger.errors import SecureAggregationError

__all__ = [
    "CkksKeys",
    "add_payloads",
    "decode_payload",
    "encode_payload",
    "encrypt_update",
    "public_context_from",
    "select",
    "unselect",
]

_U32 = struct.Struct(">I")


class CkksKeys:
    """The key holder's CKKS context (secret key included); it stays inside the enclave.

    Parameters
    ----------
    poly_modulus_degree
        Ring dimension N; a ciphertext holds N/2 values (4096 for the default 8192).
    coeff_mod_bit_sizes
        Coefficient modulus chain; ``(60, 40, 40, 60)`` gives 128-bit security at N = 8192.
    scale_bits
        log2 of the encoding scale (precision of the sums).
    """

    def __init__(
        self,
        poly_modulus_degree: int = 8192,
        coeff_mod_bit_sizes: Sequence[int] = (60, 40, 40, 60),
        scale_bits: int = 40,
    ) -> None:
        self._context = ts.context(
            ts.SCHEME_TYPE.CKKS,
            poly_modulus_degree=poly_modulus_degree,
            coeff_mod_bit_sizes=list(coeff_mod_bit_sizes),
        )
        self._context.global_scale = 2.0**scale_bits
        self.slots = poly_modulus_degree // 2

    def public_context(self) -> bytes:
        """The context without its secret key, serialised: enough to encrypt and to add."""
        public = self._context.copy()
        public.make_context_public()
        data: bytes = public.serialize()
        return data

    def decrypt(self, payload: bytes, length: int) -> np.ndarray:
        """Decrypt a (summed) payload of ``length`` values."""
        chunks = [ts.ckks_vector_from(self._context, c) for c in decode_payload(payload)]
        values = np.concatenate([np.asarray(c.decrypt(), dtype=np.float64) for c in chunks])
        if len(values) < length:
            raise SecureAggregationError(
                f"the payload holds {len(values)} values, {length} were expected"
            )
        return values[:length]

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a CKKS secret key cannot be pickled")


def public_context_from(data: bytes) -> Any:
    """A public context received from the key holder; refuses one that holds a secret key."""
    context = ts.context_from(data)
    if context.is_private():
        raise SecureAggregationError("the CKKS context sent to devices holds the secret key")
    return context


def encode_payload(chunks: Sequence[bytes]) -> bytes:
    """The explicit wire encoding of serialised ciphertexts."""
    parts = [_U32.pack(len(chunks))]
    for c in chunks:
        parts += [_U32.pack(len(c)), c]
    return b"".join(parts)


def decode_payload(payload: bytes) -> list[bytes]:
    """Inverse of :func:`encode_payload`; raises ``SecureAggregationError`` on bad framing."""
    try:
        (count,) = _U32.unpack_from(payload, 0)
        at, chunks = 4, []
        for _ in range(count):
            (size,) = _U32.unpack_from(payload, at)
            at += 4
            if at + size > len(payload):
                raise ValueError("truncated")
            chunks.append(payload[at : at + size])
            at += size
    except (struct.error, ValueError):
        raise SecureAggregationError("malformed CKKS payload") from None
    if at != len(payload):
        raise SecureAggregationError("malformed CKKS payload: trailing bytes")
    return chunks


def encrypt_update(context: Any, update: np.ndarray, slots: int = 4096) -> bytes:
    """A device encrypts its update under the public context, ``slots`` values per ciphertext
    (``CkksKeys.slots``: half the ring dimension)."""
    values = np.asarray(update, dtype=np.float64).ravel()
    chunks = [
        ts.ckks_vector(context, values[i : i + slots].tolist()).serialize()
        for i in range(0, max(len(values), 1), slots)
    ]
    return encode_payload(chunks)


def add_payloads(context: Any, payloads: Sequence[bytes]) -> bytes:
    """The aggregator's sum of encrypted updates, computed without any secret key."""
    if not payloads:
        raise SecureAggregationError("no encrypted update to add")
    decoded = [decode_payload(p) for p in payloads]
    if len({len(d) for d in decoded}) != 1:
        raise SecureAggregationError("encrypted updates of different lengths cannot be added")
    sums = []
    for parts in zip(*decoded, strict=True):
        total = ts.ckks_vector_from(context, parts[0])
        for part in parts[1:]:
            total = total + ts.ckks_vector_from(context, part)  # faster than in-place here
        sums.append(total.serialize())
    return encode_payload(sums)


def select(update: np.ndarray, ranges: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Split ``update`` into the coordinates of the selected layer ranges (to encrypt) and the
    rest (sent in clear), both in order."""
    mask = np.zeros(len(update), dtype=bool)
    for start, stop in ranges:
        if not 0 <= start <= stop <= len(update):
            raise SecureAggregationError(f"layer range {start}:{stop} is outside the update")
        mask[start:stop] = True
    return update[mask], update[~mask]


def unselect(
    secret: np.ndarray, clear: np.ndarray, ranges: Sequence[tuple[int, int]], length: int
) -> np.ndarray:
    """Inverse of :func:`select`."""
    mask = np.zeros(length, dtype=bool)
    for start, stop in ranges:
        mask[start:stop] = True
    out = np.empty(length, dtype=np.float64)
    out[mask] = secret
    out[~mask] = clear
    return out
