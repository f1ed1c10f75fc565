"""``secagg+``: pairwise-masked updates whose sum only is revealed (Bell et al., CCS 2020).

Per round, the sampled devices run SecAgg+ (:mod:`fedledger.security.secagg`): they advertise
X25519 keys, Shamir-share their secrets with their neighbours on a k-regular graph, and each
sends — as its envelope's payload — its update scaled by ``n_samples / max_weight``, encoded in
fixed point and masked. The aggregator adds the masked payloads of the accepted envelopes;
devices that dropped out after sharing keys (or whose envelope a gateway refused) have their
pairwise masks rebuilt from the survivors' shares, and the survivors' self-masks are removed.
The ring sum equals the plain sum of the encoded updates exactly. Only that sum is revealed, so
only averaging strategies apply.

In the simulation the devices' side of each message exchange runs here as well (each
:class:`~fedledger.security.secagg.protocol.Device` keeps its own secrets), and
``security.secagg_dropout`` makes a seeded fraction of devices drop out after sharing keys.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

import numpy as np
import torch

from fedledger.errors import SecureAggregationError
from fedledger.fl.secure.base import (
    RoundInputs,
    SecureAggregator,
    SecureOutcome,
    Submission,
    apply_mean,
)
from fedledger.security.secagg import (
    Device,
    MaskedInput,
    SecAggConfig,
    Server,
    secagg_plus_degree,
)
from fedledger.strategies.base import Strategy

__all__ = ["SECAGG_U32", "SecAggMode", "secagg_degree"]

SECAGG_U32 = "secagg+-u32"
"""Envelope scheme: a masked fixed-point vector, little-endian uint32 (the ring Z/2^32)."""


def secagg_degree(n: int, requested: int) -> int:
    """The graph degree for ``n`` devices: ``requested`` (0: ~2 log2 n), made valid (even and
    below ``n``, or ``n - 1``)."""
    k = requested or secagg_plus_degree(n)
    if k >= n - 1:
        return n - 1
    return k - (k % 2)


class SecAggMode(SecureAggregator):
    """See the module docstring."""

    mode = "secagg+"
    scheme = SECAGG_U32

    def begin_round(self, r: int, devices: Sequence[int], n_samples: Sequence[int]) -> None:
        sec = self.ctx.security
        n = len(devices)
        if n < 2:
            raise SecureAggregationError(f"round {r}: secagg+ needs at least 2 devices, got {n}")
        k = secagg_degree(n, sec.secagg_neighbours)
        t = min(sec.secagg_threshold or k // 2 + 1, k)
        seed = self.ctx.seed.to_bytes(8, "big") + r.to_bytes(8, "big")
        self.config = SecAggConfig(
            n=n,
            k=k,
            threshold=t,
            clip=sec.secagg_clip,
            dim=self.ctx.n_params,
            bits=sec.secagg_bits,
            modulus_bits=32,
            round=r,
            graph_seed=hashlib.sha256(b"fedledger/secagg+/graph" + seed).digest(),
        )
        self.position = {d: i for i, d in enumerate(devices)}
        self.order = list(devices)
        self.ratios = [self.weight_ratio(int(w)) for w in n_samples]
        drop = round(sec.secagg_dropout * n)
        rng = np.random.default_rng([self.ctx.seed, r, 3])
        self.dropped = {int(i) for i in rng.choice(n, size=drop, replace=False)} if drop else set()
        self.clipped = 0
        self._failure: BaseException | None = None
        # rounds 0-1 and the masks do not depend on the updates: devices run them while they
        # train (torch releases the GIL, so the simulation overlaps them too)
        self._setup = threading.Thread(target=self._key_setup, args=(seed,), daemon=True)
        self._setup.start()

    def _key_setup(self, seed: bytes) -> None:
        try:
            graph = self.config.graph()
            self.devices = [
                Device(
                    i,
                    self.config,
                    seed=hashlib.sha256(
                        b"fedledger/secagg+/device" + seed + i.to_bytes(4, "big")
                    ).digest(),
                    graph=graph,
                )
                for i in range(self.config.n)
            ]
            self.server = Server(self.config, graph=graph)
            directory = self.server.collect_keys(d.advertise() for d in self.devices)
            self.inboxes = self.server.route_shares(d.share_keys(directory) for d in self.devices)
            for d in self.devices:
                if d.index not in self.dropped:
                    d.receive(self.inboxes.get(d.index, {}))
        except BaseException as exc:  # re-raised in the caller's thread
            self._failure = exc

    def _ready(self) -> None:
        self._setup.join()
        if self._failure is not None:
            raise self._failure

    def protect(self, r: int, device: int, update: np.ndarray) -> bytes | None:
        self._ready()
        k = self.position[device]
        if k in self.dropped:
            return None
        x = np.asarray(update, dtype=np.float64) * self.ratios[k]
        msg = self.devices[k].mask_input(x, self.inboxes.get(k, {}))
        self.clipped += self.devices[k].clipped
        return msg.masked.astype("<u4").tobytes()

    def payload_size(self) -> int | None:
        return 4 * self.ctx.n_params

    def aggregate(
        self,
        r: int,
        base: torch.Tensor,
        strategy: Strategy,
        submissions: Sequence[Submission],
        round_inputs: RoundInputs | None = None,
    ) -> SecureOutcome:
        self._ready()
        rejected: dict[int, str] = {}
        index_of: dict[int, int] = {}
        for i, sub in enumerate(submissions):
            k = self.position.get(sub.device, -1)
            if k < 0 or k in index_of:
                rejected[i] = "not-in-round" if k < 0 else "duplicate"
            elif len(sub.payload) != 4 * self.ctx.n_params:
                rejected[i] = "malformed"
            else:
                index_of[k] = i
        if not index_of:
            return SecureOutcome(base.clone(), strategy, [], rejected, {"survivors": 0})
        # one widened vector at a time: the server adds each as it arrives
        request = self.server.collect_masked(
            MaskedInput(k, np.frombuffer(submissions[i].payload, dtype="<u4").astype(np.uint64))
            for k, i in index_of.items()
        )
        result = self.server.unmask(
            self.devices[k].unmask(request) for k in sorted(request.survivors)
        )
        weight = sum(submissions[index_of[k]].n_samples for k in result.survivors)
        mean = result.total / (weight / self.ctx.max_weight)
        params, own = apply_mean(strategy, base, mean)
        return SecureOutcome(
            params=params,
            strategy=own,
            accepted=sorted(index_of[k] for k in result.survivors),
            rejected=rejected,
            evidence={
                "survivors": len(result.survivors),
                "dropped": len(result.dropped),
                "clipped": int(self.clipped),
                "neighbours": self.config.k,
                "threshold": self.config.threshold,
                "dropped_devices": [self.order[k] for k in result.dropped],
            },
        )
