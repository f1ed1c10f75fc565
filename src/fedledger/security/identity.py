"""Ed25519 identities of fedledger members (RFC 8032, through ``cryptography``).

Every device, gateway, validator and authority has a 32-byte *member id* — the key under which the
on-chain registry stores it — and an Ed25519 key pair (RFC 8032 §5.1, "PureEdDSA"). Signing and
verification are delegated to OpenSSL via ``cryptography``; nothing here is hand-rolled.

Simulated identities come from :func:`derive_identity`: the private key is derived from the run
seed with HKDF-SHA256 (RFC 5869), so a simulation is reproducible — and its keys are **not
secret**: anyone who knows the seed can sign as any simulated member. A real deployment generates
keys with :meth:`Identity.generate` (operating-system randomness) and registers the public keys.

Examples
--------
>>> alice = derive_identity(7, "device", "dev-000")
>>> sig = alice.sign(b"hello")
>>> verify_signature(alice.public_key, sig, b"hello")
True
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal, get_args

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import crypto_sign_open
from nacl.exceptions import CryptoError

__all__ = [
    "ROLES",
    "Identity",
    "Role",
    "derive_identity",
    "member_id",
    "verify_signature",
]

Role = Literal["device", "gateway", "validator", "authority"]
"""The four member roles of DESIGN.md ("Roles")."""

ROLES: Final[tuple[Role, ...]] = get_args(Role)

_ID_DOMAIN: Final = b"fedledger/id/v1\x00"
_KEY_DOMAIN: Final = b"fedledger/ed25519/v1"
_PUBLIC_KEY_SIZE: Final = 32
_SIGNATURE_SIZE: Final = 64


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")


def member_id(role: str, name: str) -> bytes:
    """The 32-byte registry id of a member: ``sha256("fedledger/id/v1\\0" role "\\0" name)``.

    Parameters
    ----------
    role
        One of :data:`ROLES`.
    name
        The member's name, unique within its role (utf-8 encoded).

    Returns
    -------
    bytes
        32 bytes; the key by which the on-chain registry stores the member.
    """
    _check_role(role)
    return hashlib.sha256(_ID_DOMAIN + role.encode() + b"\x00" + name.encode()).digest()


class Identity:
    """A member's role, name, id and Ed25519 key pair (RFC 8032); immutable.

    The private key is held but never shown (not in ``repr``) and never serialised here.
    Equality and hashing use ``(role, name, public_key)``.

    Parameters
    ----------
    role
        One of :data:`ROLES`.
    name
        The member's name; ``id`` is :func:`member_id` of ``(role, name)``.
    signing_key
        The Ed25519 private key.

    Attributes
    ----------
    role, name
        As given.
    id
        32-byte member id.
    public_key
        32-byte raw Ed25519 public key (RFC 8032 §5.1.5 encoding).
    """

    __slots__ = ("_signing_key", "id", "name", "public_key", "role")

    role: Role
    name: str
    id: bytes
    public_key: bytes
    _signing_key: Ed25519PrivateKey

    def __init__(self, role: Role, name: str, signing_key: Ed25519PrivateKey) -> None:
        set_ = object.__setattr__
        set_(self, "role", role)
        set_(self, "name", name)
        set_(self, "id", member_id(role, name))
        set_(self, "public_key", signing_key.public_key().public_bytes_raw())
        set_(self, "_signing_key", signing_key)

    @classmethod
    def generate(cls, role: Role, name: str) -> Identity:
        """A fresh identity with a key from the operating system's CSPRNG (for deployments)."""
        return cls(role, name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, role: Role, name: str, private_key: bytes) -> Identity:
        """An identity from a 32-byte raw Ed25519 private key (RFC 8032 §5.1.5 seed)."""
        if len(private_key) != 32:
            raise ValueError(f"an Ed25519 private key has 32 bytes, got {len(private_key)}")
        return cls(role, name, Ed25519PrivateKey.from_private_bytes(private_key))

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (RFC 8032 §5.1.6; deterministic)."""
        return self._signing_key.sign(message)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Identity is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Identity is immutable; cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identity):
            return NotImplemented
        return (self.role, self.name, self.public_key) == (other.role, other.name, other.public_key)

    def __hash__(self) -> int:
        return hash((self.role, self.name, self.public_key))

    def __repr__(self) -> str:
        return (
            f"Identity(role={self.role!r}, name={self.name!r}, id={self.id.hex()[:16]}…, "
            f"public_key={self.public_key.hex()[:16]}…)"
        )

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Identity holds a private key and is never pickled")


def derive_identity(seed: int, role: Role, name: str) -> Identity:
    """A deterministic identity for simulations, derived from the run seed.

    The 32-byte Ed25519 private seed is ``HKDF-SHA256(ikm=seed as 8 bytes big-endian, salt=none,
    info="fedledger/ed25519/v1" role name)`` (RFC 5869). ``role`` is one of four words none of
    which is a prefix of another, so ``role name`` is unambiguous.

    These keys are **not secret**: anyone with the run seed can re-derive them. Use
    :meth:`Identity.generate` outside simulations.

    Parameters
    ----------
    seed
        Run seed, ``0 <= seed < 2**64``.
    role
        One of :data:`ROLES`.
    name
        Member name.
    """
    _check_role(role)
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"seed must fit in 8 unsigned bytes, got {seed}")
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=_KEY_DOMAIN + role.encode() + name.encode(),
    )
    return Identity.from_private_bytes(role, name, hkdf.derive(seed.to_bytes(8, "big")))


def verify_signature(
    public_key: bytes | bytearray | memoryview,
    signature: bytes | bytearray | memoryview,
    message: bytes | bytearray | memoryview,
) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` (RFC 8032 §5.1.7).

    Never raises: wrong lengths, wrong types and invalid keys or points all give ``False``.
    Verification goes through libsodium (PyNaCl), about twice as fast as OpenSSL's here
    (50 vs 102 µs per signature); a gateway verifies every envelope of every round.
    """
    try:
        if len(public_key) != _PUBLIC_KEY_SIZE or len(signature) != _SIGNATURE_SIZE:
            return False
        crypto_sign_open(bytes(signature) + bytes(message), bytes(public_key))
    except (CryptoError, ValueError, TypeError):
        return False
    return True
