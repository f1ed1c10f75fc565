"""Shamir secret sharing over the prime field GF(2^521 - 1) (Shamir 1979; Bell et al. 2020, §3).

SecAgg+ devices share two 32-byte secrets with their neighbours: the self-mask seed ``b_i`` and the
X25519 mask key ``s_i``. A secret of up to 65 bytes is read as one big-endian integer below the
Mersenne prime ``P = 2^521 - 1`` and hidden as the constant term of a random polynomial of degree
``threshold - 1``; the share for id ``x`` (``1 <= x < P``) is the polynomial's value at ``x``. Any
``threshold`` shares recover the secret by Lagrange interpolation at 0; fewer are consistent with
every secret, so they reveal nothing about it.

Coefficients come from :func:`secrets.randbelow`, or, for reproducible simulations, from a
caller-given 32-byte ``seed`` expanded with ChaCha20 (:mod:`.prg`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from fedledger.errors import SecureAggregationError
from fedledger.security.secagg.prg import keystream

__all__ = ["MAX_SECRET_SIZE", "PRIME", "Share", "combine", "split"]

PRIME: Final = (1 << 521) - 1
MAX_SECRET_SIZE: Final = 65  # 65 * 8 = 520 bits < 521
_ELEMENT_SIZE: Final = 66  # bytes drawn per coefficient (528 bits, masked to 521)


@dataclass(frozen=True, slots=True)
class Share:
    """One Shamir share: the point ``(x, y)`` and what is needed to rebuild the secret.

    Parameters
    ----------
    x
        The share id, ``1 <= x < PRIME``.
    y
        The polynomial's value at ``x``, ``0 <= y < PRIME``.
    threshold
        How many shares rebuild the secret.
    length
        Length in bytes of the secret.
    """

    x: int
    y: int
    threshold: int
    length: int

    def __post_init__(self) -> None:
        if not (0 < self.x < PRIME and 0 <= self.y < PRIME):
            raise SecureAggregationError(f"share ({self.x}, ...) is outside the field")
        if self.threshold < 1 or not 1 <= self.length <= MAX_SECRET_SIZE:
            raise SecureAggregationError("share has an invalid threshold or secret length")


def _coefficients(count: int, seed: bytes | None) -> list[int]:
    if seed is None or count == 0:
        return [secrets.randbelow(PRIME) for _ in range(count)]
    out: list[int] = []
    stream = keystream(seed, _ELEMENT_SIZE * (count + 8))  # spare draws for rejection
    for at in range(0, len(stream), _ELEMENT_SIZE):
        value = int.from_bytes(stream[at : at + _ELEMENT_SIZE], "big") & PRIME
        if value < PRIME:
            out.append(value)
            if len(out) == count:
                return out
    raise SecureAggregationError("ran out of keystream drawing Shamir coefficients")


def split(
    secret: bytes, threshold: int, share_ids: Sequence[int], *, seed: bytes | None = None
) -> dict[int, Share]:
    """Split ``secret`` into one share per id, any ``threshold`` of which rebuild it.

    Parameters
    ----------
    secret
        1 to 65 bytes.
    threshold
        ``1 <= threshold <= len(share_ids)``.
    share_ids
        Distinct evaluation points, each ``1 <= id < PRIME``.
    seed
        Optional 32-byte seed making the random coefficients reproducible (simulations only;
        never reuse a seed for two secrets).

    Returns
    -------
    dict
        ``{id: Share}``.
    """
    if not 1 <= len(secret) <= MAX_SECRET_SIZE:
        raise SecureAggregationError(
            f"secret must be 1..{MAX_SECRET_SIZE} bytes, got {len(secret)}"
        )
    ids = list(share_ids)
    if len(set(ids)) != len(ids) or not all(0 < x < PRIME for x in ids):
        raise SecureAggregationError("share ids must be distinct integers in 1 .. PRIME - 1")
    if not 1 <= threshold <= len(ids):
        raise SecureAggregationError(
            f"threshold must be in 1..{len(ids)} (the number of shares), got {threshold}"
        )
    coefficients = [int.from_bytes(secret, "big"), *_coefficients(threshold - 1, seed)]
    shares: dict[int, Share] = {}
    for x in ids:
        y = 0
        for c in reversed(coefficients):  # Horner
            y = (y * x + c) % PRIME
        shares[x] = Share(x, y, threshold, len(secret))
    return shares


def combine(shares: Iterable[Share]) -> bytes:
    """Rebuild the secret from at least ``threshold`` shares (extra shares are ignored).

    Raises
    ------
    SecureAggregationError
        If there are fewer than ``threshold`` distinct shares, or the shares disagree on the
        threshold or the secret length, or two shares have the same id and different values.
    """
    points: dict[int, Share] = {}
    for share in shares:
        if share.x in points and points[share.x] != share:
            raise SecureAggregationError(f"two different shares with id {share.x}")
        points[share.x] = share
    if not points:
        raise SecureAggregationError("no shares to combine")
    first = next(iter(points.values()))
    if any((s.threshold, s.length) != (first.threshold, first.length) for s in points.values()):
        raise SecureAggregationError("shares disagree on threshold or secret length")
    if len(points) < first.threshold:
        raise SecureAggregationError(
            f"{len(points)} shares available, {first.threshold} needed to rebuild the secret"
        )
    chosen = list(points.values())[: first.threshold]
    secret = 0
    for i, si in enumerate(chosen):
        num, den = 1, 1
        for j, sj in enumerate(chosen):
            if i != j:
                num = num * sj.x % PRIME
                den = den * (sj.x - si.x) % PRIME
        secret = (secret + si.y * num * pow(den, -1, PRIME)) % PRIME
    if secret >> (8 * first.length):
        raise SecureAggregationError("shares are inconsistent: the secret does not fit its length")
    return secret.to_bytes(first.length, "big")
