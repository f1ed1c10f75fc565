"""Fixed-point encoding of float updates into the ring Z_M, M = 2^modulus_bits (Bell et al. 2020).

SecAgg+ (Bell, Bonawitz, Gascón, Lepoint, Raykova, CCS 2020, §2 and §5) sums vectors over a finite
ring, so each device first clips its update to ``[-clip, clip]`` and quantises it to an unsigned
integer of ``bits`` bits: ``q = rint((x + clip) * scale)`` with ``scale = (2^bits - 1) / (2 clip)``,
so ``0 <= q <= 2^bits - 1 = 2 clip scale``. The sum of ``n`` such values never wraps as long as

    ``n * (2 * clip * scale) = n * (2^bits - 1) < M``,

which :attr:`FixedPoint.max_devices` reports. Then the ring sum of the encodings *is* the integer
sum of the ``q`` values, exactly, and :meth:`FixedPoint.decode_sum` maps it back with one affine
map, ``s / scale - n * clip`` (exact in float64 while ``s < 2^53``).

Ring elements are held in ``numpy.uint64``: arithmetic wraps mod 2^64 natively, and since M divides
2^64 a final ``& (M - 1)`` reduces any uint64 result mod M.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from fedledger.errors import SecureAggregationError

__all__ = ["EncodedVector", "FixedPoint", "ring_mask"]

_MAX_MODULUS_BITS: Final = 64


def ring_mask(modulus_bits: int) -> np.uint64:
    """``M - 1`` for ``M = 2^modulus_bits`` as a uint64, the bit mask that reduces mod M."""
    if not 1 <= modulus_bits <= _MAX_MODULUS_BITS:
        raise SecureAggregationError(f"modulus_bits must be in 1..64, got {modulus_bits}")
    return np.uint64((1 << modulus_bits) - 1)


class EncodedVector(NamedTuple):
    """The ring encoding of one vector and how many of its entries were clipped."""

    values: npt.NDArray[np.uint64]
    clipped: int


@dataclass(frozen=True, slots=True)
class FixedPoint:
    """Clip-and-quantise codec between float vectors and the ring Z_M (Bell et al. 2020, §5).

    Parameters
    ----------
    clip
        Entries are clipped to ``[-clip, clip]``; must be finite and positive.
    bits
        Quantisation bits per entry, 1..62: entries map to integers ``0 .. 2^bits - 1``.
    modulus_bits
        The ring is Z_M with ``M = 2^modulus_bits``, ``bits < modulus_bits <= 64``.

    Examples
    --------
    >>> fp = FixedPoint(clip=1.0, bits=16, modulus_bits=32)
    >>> x = np.array([0.5, -2.0], dtype=np.float32)
    >>> enc = fp.encode(x)
    >>> enc.clipped
    1
    >>> bool(np.array_equal(fp.decode_sum(enc.values, 1), fp.quantise(x)))
    True
    """

    clip: float
    bits: int = 16
    modulus_bits: int = 32

    def __post_init__(self) -> None:
        if not (np.isfinite(self.clip) and self.clip > 0):
            raise SecureAggregationError(f"clip must be finite and > 0, got {self.clip}")
        if not 1 <= self.bits <= 62:
            raise SecureAggregationError(f"bits must be in 1..62, got {self.bits}")
        if not self.bits < self.modulus_bits <= _MAX_MODULUS_BITS:
            raise SecureAggregationError(
                f"need bits < modulus_bits <= 64, got bits={self.bits}, "
                f"modulus_bits={self.modulus_bits}"
            )

    @property
    def scale(self) -> float:
        """Quantisation steps per unit, ``(2^bits - 1) / (2 clip)``."""
        return float((1 << self.bits) - 1) / (2.0 * self.clip)

    @property
    def mask(self) -> np.uint64:
        """``M - 1``; ``a & mask`` is ``a mod M``."""
        return ring_mask(self.modulus_bits)

    @property
    def max_devices(self) -> int:
        """Largest ``n`` with ``n * (2^bits - 1) < M``: sums of that many encodings never wrap."""
        return ((1 << self.modulus_bits) - 1) // ((1 << self.bits) - 1)

    def check_devices(self, n: int) -> None:
        """Raise :class:`SecureAggregationError` if a sum of ``n`` encodings could wrap mod M."""
        if not 1 <= n <= self.max_devices:
            raise SecureAggregationError(
                f"{n} devices: a sum of {n} {self.bits}-bit values wraps mod 2^{self.modulus_bits} "
                f"(at most {self.max_devices})"
            )

    def _levels(self, x: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], int]:
        a = np.asarray(x, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(a)):
            raise SecureAggregationError("cannot encode a vector with NaN or infinite entries")
        clipped = int(np.count_nonzero(np.abs(a) > self.clip))
        levels = np.rint((np.clip(a, -self.clip, self.clip) + self.clip) * self.scale)
        return np.clip(levels, 0.0, float((1 << self.bits) - 1)), clipped

    def encode(self, x: npt.ArrayLike) -> EncodedVector:
        """Clip ``x`` (flattened) to ``[-clip, clip]`` and quantise it into Z_M.

        Raises
        ------
        SecureAggregationError
            If ``x`` has a NaN or infinite entry.
        """
        levels, clipped = self._levels(x)
        return EncodedVector(levels.astype(np.uint64), clipped)

    def quantise(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The value ``decode_sum(encode(x).values, 1)`` that ``x`` stands for after encoding."""
        levels, _ = self._levels(x)
        return levels / self.scale - self.clip

    def decode_sum(self, s: npt.NDArray[np.uint64], n: int) -> npt.NDArray[np.float64]:
        """Decode the ring sum ``s`` of ``n`` encodings: ``(s mod M) / scale - n * clip``.

        Raises
        ------
        SecureAggregationError
            If ``n`` encodings could wrap mod M (see :attr:`max_devices`).
        """
        self.check_devices(n)
        ring = np.asarray(s, dtype=np.uint64) & self.mask
        return ring.astype(np.float64) / self.scale - n * self.clip
