"""Plain records the ledger client returns, and the digests both sides of the chain agree on."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from fedledger.errors import LedgerError

__all__ = [
    "ROLES",
    "ROUND_STATUSES",
    "STATUSES",
    "CommitRecord",
    "Member",
    "RoundInfo",
    "VoteRecord",
    "agreement_key",
    "check_bytes32",
    "rewards_digest",
]

ROLES: dict[str, int] = {"device": 1, "gateway": 2, "validator": 3}
STATUSES: dict[str, int] = {"active": 1, "revoked": 2}
ROUND_STATUSES: tuple[str, ...] = ("none", "open", "finalised", "failed")


def check_bytes32(what: str, value: bytes) -> None:
    """Raise ``LedgerError`` unless ``value`` is exactly 32 bytes."""
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise LedgerError(f"{what} must be 32 bytes, got {value!r:.80}")


@dataclass(frozen=True)
class Member:
    """A registered device, gateway or validator.

    Parameters
    ----------
    id
        32-byte member id (computed off chain).
    role
        ``"device"``, ``"gateway"`` or ``"validator"``.
    key
        32-byte Ed25519 public key.
    cluster
        Cluster number (uint32).
    status
        ``"active"`` or ``"revoked"``.
    account
        EVM address a gateway or validator transacts from; ``None`` for devices.
    """

    id: bytes
    role: str
    key: bytes
    cluster: int
    status: str = "active"
    account: str | None = None

    def __post_init__(self) -> None:
        check_bytes32("member id", self.id)
        check_bytes32("member key", self.key)
        if self.role not in ROLES:
            raise LedgerError(f"member role must be one of {sorted(ROLES)}, got {self.role!r}")
        if self.status not in STATUSES:
            raise LedgerError(
                f"member status must be one of {sorted(STATUSES)}, got {self.status!r}"
            )
        if not 0 <= self.cluster < 2**32:
            raise LedgerError(f"member cluster must fit in uint32, got {self.cluster}")
        if (self.account is None) != (self.role == "device"):
            raise LedgerError(
                f"a {self.role} {'must not have' if self.role == 'device' else 'needs'} an account"
            )


@dataclass(frozen=True)
class RoundInfo:
    """What the Rounds contract keeps about one round.

    ``status`` is one of :data:`ROUND_STATUSES`; ``model``, ``accepted`` and ``rewards`` are
    zero until the round is finalised; ``votes`` counts every vote, ``support`` the votes for
    the finalised key, ``commits`` the gateways' commits.
    """

    round: int
    status: str
    base: bytes
    config: bytes
    model: bytes
    accepted: bytes
    rewards: bytes
    votes: int
    support: int
    commits: int

    @property
    def finalised(self) -> bool:
        """Whether a quorum agreed on this round's result."""
        return self.status == "finalised"


@dataclass(frozen=True)
class CommitRecord:
    """A gateway's Merkle root for one round, from its ``Committed`` event."""

    round: int
    gateway: bytes
    root: bytes
    count: int
    tx_hash: str
    block_number: int


@dataclass(frozen=True)
class VoteRecord:
    """A validator's vote, from its ``Voted`` event.

    ``agrees`` tells whether the vote matches the round's finalised result (``False`` while
    the round is not finalised); ``agreed_when_cast`` is the event's own flag, which is
    ``True`` only for the finalising vote and agreeing votes cast after it.
    """

    round: int
    validator: bytes
    model: bytes
    accepted: bytes
    rewards: bytes
    metrics: bytes
    quote: bytes
    agrees: bool
    agreed_when_cast: bool
    tx_hash: str
    block_number: int


def rewards_digest(ids: Sequence[bytes], amounts: Sequence[int]) -> bytes:
    """sha256 of ``abi.encode(bytes32[] ids, uint256[] amounts)``: what validators vote on and
    what ``Token.payout`` checks."""
    if len(ids) != len(amounts):
        raise LedgerError(f"rewards: {len(ids)} ids but {len(amounts)} amounts")
    for member_id in ids:
        check_bytes32("reward id", member_id)
    return hashlib.sha256(
        abi_encode(["bytes32[]", "uint256[]"], [list(ids), list(amounts)])
    ).digest()


def agreement_key(model: bytes, accepted: bytes, rewards: bytes) -> bytes:
    """keccak256(model | accepted | rewards): the key validators' votes are tallied under."""
    return keccak(model + accepted + rewards)
