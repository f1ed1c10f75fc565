"""SecAgg+ secure aggregation (Bell, Bonawitz, Gascón, Lepoint, Raykova, CCS 2020).

Fixed-point ring encoding, a ChaCha20 mask PRG, X25519 + HKDF key agreement, Shamir sharing over
GF(2^521 - 1), a seeded Harary communication graph, and one in-memory protocol round in which
devices and the server exchange only messages. Imports nothing from fedledger but
:mod:`fedledger.errors`.
"""

from fedledger.security.secagg.fixed_point import EncodedVector, FixedPoint, ring_mask
from fedledger.security.secagg.graph import CommunicationGraph, secagg_plus_degree
from fedledger.security.secagg.prg import expand, keystream
from fedledger.security.secagg.protocol import (
    AdvertiseKeys,
    AggregationResult,
    Device,
    EncryptedShares,
    MaskedInput,
    SecAggConfig,
    UnmaskRequest,
    UnmaskShares,
)
from fedledger.security.secagg.server import Server
from fedledger.security.secagg.shamir import PRIME, Share, combine, split
from fedledger.security.secagg.simulation import DropStage, simulate_round

__all__ = [
    "PRIME",
    "AdvertiseKeys",
    "AggregationResult",
    "CommunicationGraph",
    "Device",
    "DropStage",
    "EncodedVector",
    "EncryptedShares",
    "FixedPoint",
    "MaskedInput",
    "SecAggConfig",
    "Server",
    "Share",
    "UnmaskRequest",
    "UnmaskShares",
    "combine",
    "expand",
    "keystream",
    "ring_mask",
    "secagg_plus_degree",
    "simulate_round",
    "split",
]
