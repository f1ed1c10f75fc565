"""The plain update payload: a flat float32 vector, little-endian (IEEE 754 binary32).

This is the ``"plain-f32"`` scheme of an envelope (no protection): the receiver decodes it
without copying (``np.frombuffer``) and refuses NaN and infinities, which would otherwise poison
any mean-based aggregate (a single NaN turns FedAvg's result into NaN).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from fedledger.errors import EnvelopeError

__all__ = ["PLAIN_F32", "decode_f32", "encode_f32"]

PLAIN_F32: Final = "plain-f32"
"""Scheme name of a plain little-endian float32 payload."""

_F32LE: Final = np.dtype("<f4")


def encode_f32(update: np.ndarray) -> bytes:
    """Encode a 1-D float32 update as little-endian float32 bytes (``<f4``).

    Values are not checked for finiteness here: the receiver is the trust boundary (and
    simulated adversaries may send non-finite updates on purpose to exercise it).

    Raises
    ------
    EnvelopeError
        ``"malformed"`` if ``update`` is not a 1-D float32 array.
    """
    if (
        not isinstance(update, np.ndarray)
        or update.ndim != 1
        or update.dtype.kind != "f"
        or update.dtype.itemsize != 4
    ):
        raise EnvelopeError("malformed", "a plain-f32 update is a 1-D float32 numpy array")
    return update.astype(_F32LE, copy=False).tobytes()


def decode_f32(payload: bytes, expected_len: int | None) -> np.ndarray:
    """Decode a ``plain-f32`` payload into a read-only float32 view of ``payload`` (no copy).

    Parameters
    ----------
    payload
        The payload bytes.
    expected_len
        Number of float32 values the receiver expects (the model's parameter count), or
        ``None`` to accept any length.

    Returns
    -------
    numpy.ndarray
        1-D ``<f4`` array sharing memory with ``payload`` (read-only).

    Raises
    ------
    EnvelopeError
        ``"malformed"`` if the length is not a multiple of 4 or differs from ``expected_len``;
        ``"non-finite"`` if any value is NaN or infinite.
    """
    if len(payload) % 4:
        raise EnvelopeError("malformed", f"{len(payload)} bytes is not a whole number of float32")
    values = np.frombuffer(payload, dtype=_F32LE)
    if expected_len is not None and values.size != expected_len:
        raise EnvelopeError("malformed", f"{values.size} values, expected {expected_len}")
    if not np.isfinite(values).all():
        raise EnvelopeError("non-finite", "the update contains NaN or infinite values")
    return values
