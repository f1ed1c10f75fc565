"""One in-memory SecAgg+ round: devices and a server that share nothing but messages.

Bell, Bonawitz, Gascón, Lepoint, Raykova, "Secure Single-Server Aggregation with (Poly)Logarithmic
Overhead", CCS 2020 (Algorithm 2, semi-honest variant), on the graph of :mod:`.graph`:

* **Round 0, advertise keys** — device ``i`` sends its X25519 channel and mask public keys
  (:class:`AdvertiseKeys`); the server broadcasts them (set ``U1``).
* **Round 1, share keys** — ``i`` Shamir-shares its self-mask seed ``b_i`` and its mask secret key
  ``s_i`` among its neighbours in ``U1`` (threshold ``t``), encrypting each neighbour's pair of
  shares under their pairwise channel key (:class:`EncryptedShares`); the server routes the
  ciphertexts (senders form ``U2``).
* **Round 2, masked input** — ``i`` sends ``y_i = encode(x_i) + PRG(b_i) + Σ_{j ∈ N(i) ∩ U2, j > i}
  PRG(s_ij) − Σ_{j ∈ N(i) ∩ U2, j < i} PRG(s_ij) mod M`` (:class:`MaskedInput`); the server adds it
  to a running ring sum (senders form ``U3``, the survivors).
* **Round 3, unmasking** — the server announces survivors ``U3`` and dropped ``U2 \\ U3``
  (:class:`UnmaskRequest`); each responding device returns its share of ``b_j`` for surviving
  neighbours and of ``s_j`` for dropped ones, never both for one device (:class:`UnmaskShares`).
  The server rebuilds every ``b_j`` and removes ``PRG(b_j)``; it rebuilds every dropped ``s_j``
  and removes the pairwise masks that ``j``'s surviving neighbours added for it.

The result is the exact ring sum of the survivors' encoded inputs (:class:`AggregationResult`).
Pairwise masks between two survivors cancel. A secret with fewer than ``t`` shares available
raises :class:`~fedledger.errors.SecureAggregationError` naming the device and the counts.

Server and devices are separate objects that exchange only the message dataclasses below; the
server never holds a device's secret key, self-mask seed or unmasked input.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fedledger.errors import SecureAggregationError
from fedledger.security.secagg.fixed_point import FixedPoint
from fedledger.security.secagg.graph import CommunicationGraph
from fedledger.security.secagg.keys import (
    DOMAIN,
    KEY_SIZE,
    channel_key,
    derive,
    mask_seed,
    open_shares,
    public_bytes,
    seal_shares,
)
from fedledger.security.secagg.prg import expand
from fedledger.security.secagg.shamir import PRIME, Share, split

__all__ = [
    "AdvertiseKeys",
    "AggregationResult",
    "Device",
    "EncryptedShares",
    "MaskedInput",
    "SecAggConfig",
    "UnmaskRequest",
    "UnmaskShares",
]

_Y_SIZE: Final = (PRIME.bit_length() + 7) // 8  # 66 bytes per share value
_U64: Final = 1 << 64


@dataclass(frozen=True, slots=True)
class SecAggConfig:
    """Public parameters of one SecAgg+ round, known to every party.

    Parameters
    ----------
    n
        Number of devices, indexed ``0 .. n-1``.
    k
        Degree of the communication graph (see :class:`.graph.CommunicationGraph`), e.g.
        :func:`.graph.secagg_plus_degree`.
    threshold
        Shamir threshold ``t``, ``1 <= t <= k``. Each device tolerates ``k - t`` dropped
        neighbours; ``t > k / 2`` keeps a server from getting both secrets of a device.
    clip, bits, modulus_bits
        The :class:`.fixed_point.FixedPoint` codec; ``n * (2^bits - 1) < 2^modulus_bits``.
    dim
        Length of every input vector.
    round
        Round number, bound into every derived key.
    graph_seed
        32-byte public seed of the communication graph.
    """

    n: int
    k: int
    threshold: int
    clip: float
    dim: int
    bits: int = 16
    modulus_bits: int = 32
    round: int = 0
    graph_seed: bytes = bytes(32)

    def __post_init__(self) -> None:
        self.codec.check_devices(self.n)
        if self.n < 2 or not (self.k == self.n - 1 or (self.k % 2 == 0 and 2 <= self.k < self.n)):
            raise SecureAggregationError(
                f"need n >= 2 and k even in 2..n-1 or k = n-1, got n={self.n}, k={self.k}"
            )
        if not 1 <= self.threshold <= self.k:
            raise SecureAggregationError(
                f"threshold must be in 1..k={self.k}, got {self.threshold}"
            )
        if self.dim < 1:
            raise SecureAggregationError(f"dim must be >= 1, got {self.dim}")
        if not 0 <= self.round < _U64:
            raise SecureAggregationError(
                f"round must be an unsigned 64-bit integer, got {self.round}"
            )
        if len(self.graph_seed) != KEY_SIZE:
            raise SecureAggregationError(f"graph_seed must be {KEY_SIZE} bytes")

    @property
    def codec(self) -> FixedPoint:
        """The fixed-point codec of this round."""
        return FixedPoint(self.clip, self.bits, self.modulus_bits)

    def graph(self) -> CommunicationGraph:
        """The communication graph of this round (built anew; share it between parties)."""
        return CommunicationGraph(self.n, self.k, self.graph_seed)


@dataclass(frozen=True, slots=True)
class AdvertiseKeys:
    """Round 0, device → server → neighbours: the device's two X25519 public keys."""

    device: int
    channel_key: bytes
    mask_key: bytes


@dataclass(frozen=True, slots=True)
class EncryptedShares:
    """Round 1, device → server: per recipient, sealed shares of ``b_sender`` and ``s_sender``."""

    sender: int
    boxes: Mapping[int, bytes]


@dataclass(frozen=True, slots=True)
class MaskedInput:
    """Round 2, device → server: the masked encoded input ``y_i`` (uint64, entries mod M)."""

    device: int
    masked: npt.NDArray[np.uint64]


@dataclass(frozen=True, slots=True)
class UnmaskRequest:
    """Round 3, server → devices: who submitted a masked input and who dropped after sharing."""

    survivors: frozenset[int]
    dropped: frozenset[int]


@dataclass(frozen=True, slots=True)
class UnmaskShares:
    """Round 3, device → server: shares of ``b_j`` (survivors) and ``s_j`` (dropped), by owner."""

    sender: int
    self_mask: Mapping[int, Share]
    mask_key: Mapping[int, Share]


@dataclass(frozen=True, slots=True)
class AggregationResult:
    """What the server learns: the sum of the survivors' inputs and who they were.

    Attributes
    ----------
    total
        ``decode_sum(ring_sum, len(survivors))``, float64.
    ring_sum
        Exact sum mod M of the survivors' encoded inputs, uint64.
    survivors
        Devices whose input is in the sum, sorted.
    dropped
        Devices that shared keys but sent no masked input, sorted.
    """

    total: npt.NDArray[np.float64]
    ring_sum: npt.NDArray[np.uint64]
    survivors: tuple[int, ...]
    dropped: tuple[int, ...] = field(default=())


def _pair_mask(
    config: SecAggConfig, own: X25519PrivateKey, peer_public: bytes, i: int, j: int
) -> npt.NDArray[np.uint64]:
    seed = mask_seed(own, peer_public, config.round, i, j)
    return expand(seed, config.dim, config.modulus_bits)


def _check_graph(config: SecAggConfig, graph: CommunicationGraph | None) -> CommunicationGraph:
    if graph is None:
        return config.graph()
    if (graph.n, graph.k) != (config.n, config.k):
        raise SecureAggregationError("the communication graph does not match the config")
    return graph


class Device:
    """One device's side of a SecAgg+ round; it holds all of the device's secrets.

    Parameters
    ----------
    index
        The device's id, ``0 .. n-1``.
    config
        Public round parameters.
    seed
        Optional 32-byte secret from which the device's X25519 keys, its self-mask seed ``b_i``
        and its Shamir coefficients are derived with HKDF-SHA256, for reproducible simulations.
        Without it everything comes from :func:`os.urandom`. Never reuse a seed across rounds
        with real data.
    graph
        The round's communication graph, to avoid rebuilding it per device.
    """

    def __init__(
        self,
        index: int,
        config: SecAggConfig,
        *,
        seed: bytes | None = None,
        graph: CommunicationGraph | None = None,
    ) -> None:
        self.index = index
        self.config = config
        self.neighbours = _check_graph(config, graph).neighbours(index)
        if seed is None:
            material = os.urandom(3 * KEY_SIZE)
            self._share_seeds: tuple[bytes | None, bytes | None] = (None, None)
        else:
            if len(seed) != KEY_SIZE:
                raise SecureAggregationError(f"device seed must be {KEY_SIZE} bytes")
            info = DOMAIN + b"/device" + config.round.to_bytes(8, "big") + index.to_bytes(4, "big")
            material = derive(seed, info, 5 * KEY_SIZE)
            self._share_seeds = (material[96:128], material[128:160])
        self._channel = X25519PrivateKey.from_private_bytes(material[:32])
        self._mask = X25519PrivateKey.from_private_bytes(material[32:64])
        self._self_seed = material[64:96]
        self._peers: dict[int, AdvertiseKeys] = {}
        self._channel_keys: dict[int, bytes] = {}
        self._held: dict[int, tuple[Share, Share]] = {}
        self._mask_vector: npt.NDArray[np.uint64] | None = None
        self._received: Mapping[int, bytes] | None = None
        self.clipped = 0

    def advertise(self) -> AdvertiseKeys:
        """Round 0: the device's public keys."""
        return AdvertiseKeys(self.index, public_bytes(self._channel), public_bytes(self._mask))

    def share_keys(self, directory: Mapping[int, AdvertiseKeys]) -> EncryptedShares:
        """Round 1: Shamir-share ``b_i`` and ``s_i`` among the neighbours that advertised keys.

        Raises
        ------
        SecureAggregationError
            If fewer than ``threshold`` neighbours advertised keys.
        """
        t = self.config.threshold
        peers = {j: directory[j] for j in self.neighbours if j in directory}
        if any(ad.device != j for j, ad in peers.items()):
            raise SecureAggregationError(f"device {self.index}: key directory is inconsistent")
        if len(peers) < t:
            raise SecureAggregationError(
                f"device {self.index}: {len(peers)} neighbours advertised keys, {t} needed"
            )
        self._peers = peers
        ids = [j + 1 for j in peers]
        b_shares = split(self._self_seed, t, ids, seed=self._share_seeds[0])
        s_shares = split(self._mask.private_bytes_raw(), t, ids, seed=self._share_seeds[1])
        boxes = {}
        for j, ad in peers.items():
            data = b_shares[j + 1].y.to_bytes(_Y_SIZE, "big") + s_shares[j + 1].y.to_bytes(
                _Y_SIZE, "big"
            )
            key = channel_key(self._channel, ad.channel_key, self.config.round, self.index, j)
            self._channel_keys[j] = key  # the same key opens the box j sends back
            boxes[j] = seal_shares(key, self.config.round, self.index, j, data)
        return EncryptedShares(self.index, boxes)

    def receive(self, inbox: Mapping[int, bytes]) -> None:
        """Round 2, first half: decrypt the shares received and compute the mask (self mask
        plus pairwise masks), which does not depend on the input — a device can do this while
        it trains. :meth:`mask_input` does it if it was not done.

        Raises
        ------
        SecureAggregationError
            If a box is not from a neighbour or fails authentication, or fewer than
            ``threshold`` neighbours shared keys.
        """
        cfg = self.config
        if len(inbox) < cfg.threshold:
            raise SecureAggregationError(
                f"device {self.index}: {len(inbox)} neighbours shared keys, {cfg.threshold} needed"
            )
        held: dict[int, tuple[Share, Share]] = {}
        for j, box in inbox.items():
            if j not in self._peers:
                raise SecureAggregationError(f"device {self.index}: unexpected box from {j}")
            key = self._channel_keys.get(j) or channel_key(
                self._channel, self._peers[j].channel_key, cfg.round, self.index, j
            )
            data = open_shares(key, cfg.round, j, self.index, box)
            if len(data) != 2 * _Y_SIZE:
                raise SecureAggregationError(f"device {self.index}: malformed box from {j}")
            x_id = self.index + 1
            b = Share(x_id, int.from_bytes(data[:_Y_SIZE], "big"), cfg.threshold, KEY_SIZE)
            s = Share(x_id, int.from_bytes(data[_Y_SIZE:], "big"), cfg.threshold, KEY_SIZE)
            held[j] = (b, s)
        y = expand(self._self_seed, cfg.dim, cfg.modulus_bits)
        for j in sorted(held):
            mask = _pair_mask(cfg, self._mask, self._peers[j].mask_key, self.index, j)
            if j > self.index:
                y += mask
            else:
                y -= mask
        self._held = held
        self._mask_vector = y
        self._received = inbox

    def mask_input(self, x: npt.ArrayLike, inbox: Mapping[int, bytes]) -> MaskedInput:
        """Round 2: decrypt the shares received and return the masked encoding of ``x``.

        Parameters
        ----------
        x
            The input vector, ``config.dim`` floats; entries beyond ``±clip`` are clipped and
            counted in :attr:`clipped`.
        inbox
            ``{sender: box}`` for the boxes addressed to this device; the senders are the
            neighbours that completed round 1, and the device masks with exactly those.

        Raises
        ------
        SecureAggregationError
            If a box is not from a neighbour or fails authentication, fewer than ``threshold``
            neighbours shared keys, or ``x`` has the wrong size or a non-finite entry.
        """
        cfg = self.config
        if self._mask_vector is None or self._received is not inbox:
            self.receive(inbox)
        assert self._mask_vector is not None
        vector = np.asarray(x, dtype=np.float64).reshape(-1)
        if vector.size != cfg.dim:
            raise SecureAggregationError(
                f"device {self.index}: input has {vector.size} entries, expected {cfg.dim}"
            )
        encoded = cfg.codec.encode(vector)
        y = encoded.values
        y += self._mask_vector
        y &= cfg.codec.mask
        self.clipped = encoded.clipped
        return MaskedInput(self.index, y)

    def unmask(self, request: UnmaskRequest) -> UnmaskShares:
        """Round 3: shares of ``b_j`` for surviving and of ``s_j`` for dropped neighbours.

        Raises
        ------
        SecureAggregationError
            If the request names a device as both survivor and dropped.
        """
        if request.survivors & request.dropped:
            raise SecureAggregationError(
                f"device {self.index}: a device cannot both survive and drop out"
            )
        b = {j: pair[0] for j, pair in self._held.items() if j in request.survivors}
        s = {j: pair[1] for j, pair in self._held.items() if j in request.dropped}
        return UnmaskShares(self.index, b, s)
