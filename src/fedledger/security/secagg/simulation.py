"""Run a whole SecAgg+ round in memory, with scripted dropouts, for tests and simulations.

Devices and the server are the real :class:`.protocol.Device` and :class:`.server.Server`; the
driver only carries messages between them and withholds the messages of devices that drop out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy.typing as npt

from fedledger.errors import SecureAggregationError
from fedledger.security.secagg.protocol import AggregationResult, Device, SecAggConfig
from fedledger.security.secagg.server import Server

__all__ = ["DropStage", "simulate_round"]

DropStage = Literal["advertise", "share", "mask", "unmask"]
_STAGES: tuple[DropStage, ...] = ("advertise", "share", "mask", "unmask")


def simulate_round(
    config: SecAggConfig,
    inputs: Sequence[npt.ArrayLike],
    *,
    drop_before: Mapping[int, DropStage] | None = None,
    seed: bytes | None = None,
) -> AggregationResult:
    """One full round over ``config.n`` devices; returns the server's result.

    Parameters
    ----------
    config
        Public round parameters.
    inputs
        ``config.n`` vectors of ``config.dim`` floats, one per device.
    drop_before
        ``{device: stage}``: the device sends nothing from that stage on. ``"advertise"`` — it
        never shows up; ``"share"`` — it advertised keys only; ``"mask"`` — it shared keys but
        sent no masked input (its pairwise masks are rebuilt); ``"unmask"`` — its input is in the
        sum but it does not answer round 3.
    seed
        Optional master seed; device ``i`` gets ``sha256(domain || seed || i)`` as its
        :class:`.protocol.Device` seed, making the whole round reproducible.
    """
    if len(inputs) != config.n:
        raise SecureAggregationError(f"need {config.n} inputs, got {len(inputs)}")
    drops = dict(drop_before or {})
    if any(stage not in _STAGES for stage in drops.values()):
        raise SecureAggregationError(f"drop stages must be among {_STAGES}")

    def alive(i: int, stage: DropStage) -> bool:
        return i not in drops or _STAGES.index(drops[i]) > _STAGES.index(stage)

    graph = config.graph()
    server = Server(config, graph=graph)
    devices = []
    for i in range(config.n):
        device_seed = None
        if seed is not None:
            material = b"fedledger/secagg+/simulation" + seed + i.to_bytes(4, "big")
            device_seed = hashlib.sha256(material).digest()
        devices.append(Device(i, config, seed=device_seed, graph=graph))
    directory = server.collect_keys(d.advertise() for d in devices if alive(d.index, "advertise"))
    inboxes = server.route_shares(
        d.share_keys(directory) for d in devices if alive(d.index, "share")
    )
    request = server.collect_masked(
        d.mask_input(inputs[d.index], inboxes.get(d.index, {}))
        for d in devices
        if alive(d.index, "mask")
    )
    return server.unmask(d.unmask(request) for d in devices if alive(d.index, "unmask"))
