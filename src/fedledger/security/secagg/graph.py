"""The SecAgg+ communication graph: a Harary graph on randomly permuted devices.

Bell et al. 2020 (§3.2, §4) replace SecAgg's complete graph by a random ``k``-regular graph with
``k = O(log n)``: each device masks with, and secret-shares to, only its ``k`` neighbours. As in
their construction and in Flower's SecAgg+, the graph here is the Harary graph ``H(k, n)`` — device
at position ``p`` is joined to positions ``p ± 1, ..., p ± k/2 (mod n)`` — over a uniformly random
assignment of devices to positions. The permutation is a Fisher–Yates shuffle driven by a ChaCha20
keystream of a public 32-byte seed, so every party derives the same graph.
"""

from __future__ import annotations

import math
from typing import Final

from fedledger.errors import SecureAggregationError
from fedledger.security.secagg.prg import keystream

__all__ = ["CommunicationGraph", "secagg_plus_degree"]

_WORD: Final = 8


def secagg_plus_degree(n: int) -> int:
    """An even degree ``~ 2 log2 n`` (capped at ``n - 1``), a usual SecAgg+ choice of ``k``."""
    if n < 2:
        raise SecureAggregationError(f"need at least 2 devices, got {n}")
    k = 2 * math.ceil(math.log2(n))
    return min(k, n - 1)


def _permutation(n: int, seed: bytes) -> list[int]:
    order = list(range(n))
    stream = keystream(seed, _WORD * 2 * n)  # a draw is rejected with probability < n / 2^64
    at = 0
    for i in range(n - 1, 0, -1):
        bound = i + 1
        limit = (1 << 64) - (1 << 64) % bound
        while True:
            if at + _WORD > len(stream):
                raise SecureAggregationError("ran out of keystream shuffling the graph")
            word = int.from_bytes(stream[at : at + _WORD], "little")
            at += _WORD
            if word < limit:
                break
        j = word % bound
        order[i], order[j] = order[j], order[i]
    return order


class CommunicationGraph:
    """A ``k``-regular graph over devices ``0 .. n-1`` derived from a public seed.

    Parameters
    ----------
    n
        Number of devices, ``n >= 2``.
    k
        Degree: even with ``2 <= k < n``, or ``k = n - 1`` (the complete graph, as in SecAgg).
    seed
        32-byte public seed; the same ``(n, k, seed)`` always gives the same graph.
    """

    def __init__(self, n: int, k: int, seed: bytes) -> None:
        if n < 2:
            raise SecureAggregationError(f"need at least 2 devices, got {n}")
        if not (k == n - 1 or (k % 2 == 0 and 2 <= k < n)):
            raise SecureAggregationError(f"degree k must be even in 2..{n - 1} or {n - 1}, got {k}")
        self.n = n
        self.k = k
        position_of = _permutation(n, seed)  # device -> position
        device_at = [0] * n
        for device, position in enumerate(position_of):
            device_at[position] = device
        self._neighbours: list[tuple[int, ...]] = []
        for device in range(n):
            if k == n - 1:
                near = [d for d in range(n) if d != device]
            else:
                p = position_of[device]
                near = [device_at[(p + o) % n] for o in range(1, k // 2 + 1)]
                near += [device_at[(p - o) % n] for o in range(1, k // 2 + 1)]
            self._neighbours.append(tuple(sorted(near)))

    def neighbours(self, i: int) -> tuple[int, ...]:
        """The ``k`` neighbours of device ``i``, sorted."""
        if not 0 <= i < self.n:
            raise SecureAggregationError(f"device {i} is not in 0..{self.n - 1}")
        return self._neighbours[i]

    def edges(self) -> list[tuple[int, int]]:
        """Every edge once, as ``(i, j)`` with ``i < j``, sorted."""
        return [(i, j) for i in range(self.n) for j in self._neighbours[i] if i < j]
