"""The SecAgg+ server: routes messages, sums masked inputs, and unmasks the sum (Bell et al. 2020).

The server sees public keys, sealed share boxes, masked inputs and, in round 3, only the shares it
needs: ``b_j`` of survivors and ``s_j`` of devices that dropped after sharing keys. See
:mod:`.protocol` for the round structure. Masked inputs are added to a running uint64 ring sum as
they arrive, so memory stays at one vector whatever ``n``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fedledger.errors import SecureAggregationError
from fedledger.security.secagg.graph import CommunicationGraph
from fedledger.security.secagg.keys import KEY_SIZE, public_bytes
from fedledger.security.secagg.prg import expand
from fedledger.security.secagg.protocol import (
    AdvertiseKeys,
    AggregationResult,
    EncryptedShares,
    MaskedInput,
    SecAggConfig,
    UnmaskRequest,
    UnmaskShares,
    _check_graph,
    _pair_mask,
)
from fedledger.security.secagg.shamir import Share, combine

__all__ = ["Server"]


class Server:
    """The aggregator's side of one SecAgg+ round; call its methods in round order.

    Parameters
    ----------
    config
        Public round parameters.
    graph
        The round's communication graph, to avoid rebuilding it.
    """

    def __init__(self, config: SecAggConfig, *, graph: CommunicationGraph | None = None) -> None:
        self.config = config
        self.graph = _check_graph(config, graph)
        self._keys: dict[int, AdvertiseKeys] = {}
        self._shared: set[int] = set()
        self._survivors: set[int] = set()
        self._sum = np.zeros(config.dim, dtype=np.uint64)

    def _device(self, i: int, what: str) -> None:
        if type(i) is not int or not 0 <= i < self.config.n:
            raise SecureAggregationError(f"{what} from unknown device {i!r}")

    def collect_keys(self, adverts: Iterable[AdvertiseKeys]) -> dict[int, AdvertiseKeys]:
        """Round 0: record the advertised keys and return the directory to broadcast."""
        for ad in adverts:
            self._device(ad.device, "keys")
            if ad.device in self._keys:
                raise SecureAggregationError(f"device {ad.device} advertised keys twice")
            if len(ad.channel_key) != KEY_SIZE or len(ad.mask_key) != KEY_SIZE:
                raise SecureAggregationError(f"device {ad.device}: public keys must be 32 bytes")
            self._keys[ad.device] = ad
        return dict(self._keys)

    def route_shares(self, messages: Iterable[EncryptedShares]) -> dict[int, dict[int, bytes]]:
        """Round 1: forward every box to its recipient; returns ``{recipient: {sender: box}}``."""
        inboxes: dict[int, dict[int, bytes]] = {}
        for msg in messages:
            self._device(msg.sender, "shares")
            if msg.sender not in self._keys or msg.sender in self._shared:
                raise SecureAggregationError(f"device {msg.sender}: unexpected round-1 message")
            neighbours = set(self.graph.neighbours(msg.sender))
            if not set(msg.boxes) <= neighbours & set(self._keys):
                raise SecureAggregationError(f"device {msg.sender}: boxes for non-neighbours")
            self._shared.add(msg.sender)
            for j, box in msg.boxes.items():
                inboxes.setdefault(j, {})[msg.sender] = box
        return inboxes

    def collect_masked(self, inputs: Iterable[MaskedInput]) -> UnmaskRequest:
        """Round 2: add masked inputs to the ring sum; return who survived and who dropped."""
        for msg in inputs:
            self._device(msg.device, "masked input")
            if msg.device not in self._shared or msg.device in self._survivors:
                raise SecureAggregationError(f"device {msg.device}: unexpected masked input")
            y = msg.masked
            if y.dtype != np.uint64 or y.shape != (self.config.dim,):
                raise SecureAggregationError(
                    f"device {msg.device}: masked input must be {self.config.dim} uint64 values"
                )
            self._sum += y
            self._survivors.add(msg.device)
        if not self._survivors:
            raise SecureAggregationError("no device submitted a masked input")
        return UnmaskRequest(frozenset(self._survivors), frozenset(self._shared - self._survivors))

    def _rebuild(self, owner: int, shares: list[Share], what: str) -> bytes:
        t = self.config.threshold
        if len(shares) < t:
            raise SecureAggregationError(
                f"device {owner}: {len(shares)} shares of its {what} available, {t} needed"
            )
        return combine(shares)

    def unmask(self, responses: Iterable[UnmaskShares]) -> AggregationResult:
        """Round 3: rebuild the secrets, strip every mask, and decode the survivors' sum.

        Raises
        ------
        SecureAggregationError
            If some survivor's ``b_j`` or dropped device's ``s_j`` has fewer than ``threshold``
            shares (the message names the device and the counts), or a response is inconsistent.
        """
        cfg = self.config
        dropped = self._shared - self._survivors
        b_shares: dict[int, list[Share]] = {j: [] for j in self._survivors}
        s_shares: dict[int, list[Share]] = {j: [] for j in dropped}
        seen: set[int] = set()
        for msg in responses:
            self._device(msg.sender, "unmask shares")
            if msg.sender not in self._shared or msg.sender in seen:
                raise SecureAggregationError(f"device {msg.sender}: unexpected round-3 message")
            seen.add(msg.sender)
            neighbours = set(self.graph.neighbours(msg.sender))
            for table, given in ((b_shares, msg.self_mask), (s_shares, msg.mask_key)):
                for owner, share in given.items():
                    if owner not in table or owner not in neighbours or share.x != msg.sender + 1:
                        raise SecureAggregationError(
                            f"device {msg.sender}: unexpected share of device {owner}"
                        )
                    table[owner].append(share)
        total = self._sum.copy()
        for j in sorted(self._survivors):
            seed = self._rebuild(j, b_shares[j], "self-mask seed")
            total -= expand(seed, cfg.dim, cfg.modulus_bits)
        for j in sorted(dropped):
            secret = X25519PrivateKey.from_private_bytes(self._rebuild(j, s_shares[j], "mask key"))
            if public_bytes(secret) != self._keys[j].mask_key:
                raise SecureAggregationError(f"device {j}: rebuilt mask key does not match")
            for i in self.graph.neighbours(j):
                if i in self._survivors:  # i masked with j: +PRG(s_ij) if j > i, else -PRG
                    mask: npt.NDArray[np.uint64] = _pair_mask(
                        cfg, secret, self._keys[i].mask_key, j, i
                    )
                    if j > i:
                        total -= mask
                    else:
                        total += mask
        total &= cfg.codec.mask
        survivors = tuple(sorted(self._survivors))
        return AggregationResult(
            cfg.codec.decode_sum(total, len(survivors)), total, survivors, tuple(sorted(dropped))
        )
