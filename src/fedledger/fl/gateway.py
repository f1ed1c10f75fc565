"""The edge gateway: checks envelopes, drops bad ones with a reason, commits one Merkle root.

A gateway holds nothing secret (DESIGN.md, roles). For each round it receives the encoded
envelopes of its cluster's devices and accepts an envelope only if

1. it decodes (known version, declared payload within the size limit, payload digest matches),
2. its device is registered on the ledger and active (not revoked),
3. the Ed25519 signature verifies under the registered key, and the device belongs to this
   gateway's cluster (so one envelope cannot be counted by two gateways),
4. it is bound to this round (an envelope replayed from another round is refused),
5. its nonce was never seen before (a replay of an old envelope is refused),
6. it is the device's first envelope this round (duplicates are refused),
7. its payload is of the round's scheme: a ``plain-f32`` payload holds exactly the model's
   parameter count of finite floats; a protected payload (sealed, masked or encrypted, which
   the gateway cannot read) has the scheme's exact size where that is fixed.

The digests of the accepted envelopes are the leaves of an RFC 6962 Merkle tree whose root the
gateway commits in one transaction; each device gets its inclusion proof.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fedledger.errors import EnvelopeError
from fedledger.security.envelope import Envelope, verify_envelope
from fedledger.security.merkle import MerkleTree
from fedledger.security.payload import PLAIN_F32, decode_f32

__all__ = ["Gateway", "GatewayBatch", "KeyStatus", "Rejection"]


@dataclass(frozen=True)
class KeyStatus:
    """A device as the registry records it: Ed25519 public key and whether it is active."""

    public_key: bytes
    active: bool
    gateway: int = 0


@dataclass(frozen=True)
class Rejection:
    """One refused envelope: the device it claims (hex id, if readable) and why."""

    device: str | None
    reason: str
    detail: str


@dataclass
class GatewayBatch:
    """A gateway's result for one round."""

    gateway: int
    round: int
    accepted: list[Envelope] = field(default_factory=list)
    updates: list[np.ndarray | None] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    tree: MerkleTree | None = None

    @property
    def root(self) -> bytes:
        return self.tree.root if self.tree is not None else MerkleTree([]).root

    def reasons(self) -> dict[str, int]:
        return dict(sorted(Counter(r.reason for r in self.rejected).items()))


class Gateway:
    """Verifies one cluster's envelopes each round.

    Parameters
    ----------
    index
        Gateway number (its name is ``gateway-<index>``).
    n_params
        Length of a plain update vector (the model's parameter count).
    max_payload
        Largest payload in bytes.
    scheme
        The envelope scheme of the run (``plain-f32`` or a secure-aggregation mode's).
    payload_size
        Exact size of a protected payload, if the scheme fixes it.
    """

    def __init__(
        self,
        index: int,
        n_params: int,
        max_payload: int,
        scheme: str = PLAIN_F32,
        payload_size: int | None = None,
    ) -> None:
        self.index = index
        self.n_params = n_params
        self.max_payload = max_payload
        self.scheme = scheme
        self.payload_size = payload_size
        self._nonces: set[tuple[bytes, bytes]] = set()

    def collect(
        self,
        round_number: int,
        envelopes: Sequence[bytes],
        registry: Mapping[bytes, KeyStatus],
    ) -> GatewayBatch:
        """Check ``envelopes`` (encoded) against the ``registry`` view of the ledger."""
        batch = GatewayBatch(self.index, round_number)
        seen: set[bytes] = set()
        for raw in envelopes:
            outcome = self._check(round_number, raw, registry, seen)
            if isinstance(outcome, Rejection):
                batch.rejected.append(outcome)
                continue
            env, update = outcome
            seen.add(env.header.device_id)
            self._nonces.add((env.header.device_id, env.header.nonce))
            batch.accepted.append(env)
            batch.updates.append(update)
        batch.tree = MerkleTree([env.digest() for env in batch.accepted])
        return batch

    def _check(
        self,
        round_number: int,
        raw: bytes,
        registry: Mapping[bytes, KeyStatus],
        seen: set[bytes],
    ) -> tuple[Envelope, np.ndarray | None] | Rejection:
        try:
            env = Envelope.decode(raw, max_payload=self.max_payload)
        except EnvelopeError as exc:
            return Rejection(None, exc.reason, exc.message)
        h = env.header
        device = h.device_id.hex()
        member = registry.get(h.device_id)
        if member is None:
            return Rejection(device, "unregistered", "device is not in the ledger's registry")
        if not member.active:
            return Rejection(device, "revoked", "device was revoked by the authority")
        if not verify_envelope(env, member.public_key):
            return Rejection(device, "bad-signature", "signature does not verify")
        if member.gateway != self.index:
            return Rejection(
                device, "wrong-gateway", f"device belongs to gateway-{member.gateway}'s cluster"
            )
        if h.round != round_number:
            return Rejection(
                device, "wrong-round", f"signed for round {h.round}, not {round_number}"
            )
        if (h.device_id, h.nonce) in self._nonces:
            return Rejection(device, "replayed-nonce", "nonce already used by this device")
        if h.device_id in seen:
            return Rejection(device, "duplicate", "second envelope from the device this round")
        if h.scheme != self.scheme:
            return Rejection(
                device, "unknown-scheme", f"scheme {h.scheme!r}, this run uses {self.scheme!r}"
            )
        if self.scheme != PLAIN_F32:
            size = len(env.payload)
            if self.payload_size is not None and size != self.payload_size:
                return Rejection(
                    device, "malformed", f"{size} payload bytes, expected {self.payload_size}"
                )
            return env, None
        try:
            update = decode_f32(env.payload, self.n_params)
        except EnvelopeError as exc:
            return Rejection(device, exc.reason, exc.message)
        return env, update
