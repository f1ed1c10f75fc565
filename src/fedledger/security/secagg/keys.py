"""Key agreement for SecAgg+: X25519 + HKDF-SHA256 (Bell et al. 2020, §3; Bonawitz et al. 2017).

Each device holds two X25519 key pairs per round (RFC 7748): a *channel* key ``c`` whose pairwise
secrets encrypt the Shamir shares it sends through the server (ChaCha20-Poly1305, RFC 8439), and
a *mask* key ``s`` whose pairwise secrets seed the pairwise masks. Both pairwise keys are
``HKDF-SHA256(X25519(own secret, peer public), info = domain || round || min(i, j) || max(i, j))``
(RFC 5869), with distinct domains, so each is bound to this protocol, round and unordered pair.
"""

from __future__ import annotations

import struct
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import crypto_scalarmult
from nacl.exceptions import CryptoError

from fedledger.errors import SecureAggregationError

__all__ = [
    "DOMAIN",
    "KEY_SIZE",
    "channel_key",
    "derive",
    "mask_seed",
    "open_shares",
    "public_bytes",
    "seal_shares",
]

DOMAIN: Final = b"fedledger/secagg+/v1"
KEY_SIZE: Final = 32
_CHANNEL: Final = DOMAIN + b"/channel"
_PAIR: Final = struct.Struct(">QII")
_NONCE: Final = struct.Struct(">IIxxxx")


def derive(key_material: bytes, info: bytes, length: int = KEY_SIZE) -> bytes:
    """``HKDF-SHA256(key_material, salt=None, info)`` truncated to ``length`` bytes."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key_material)


def public_bytes(key: X25519PrivateKey) -> bytes:
    """The raw 32-byte X25519 public key of ``key``."""
    return key.public_key().public_bytes_raw()


def _pair_key(
    domain: bytes, own: X25519PrivateKey, peer_public: bytes, round_: int, i: int, j: int
) -> bytes:
    if len(peer_public) != KEY_SIZE:
        raise SecureAggregationError(f"device {j}: public key must be {KEY_SIZE} bytes")
    try:  # libsodium (PyNaCl) releases the GIL, so set-up overlaps with training threads
        shared = crypto_scalarmult(own.private_bytes_raw(), peer_public)
    except (CryptoError, RuntimeError, ValueError):
        raise SecureAggregationError(f"device {j}: public key is a low-order point") from None
    return derive(shared, domain + _PAIR.pack(round_, min(i, j), max(i, j)))


def mask_seed(own: X25519PrivateKey, peer_public: bytes, round_: int, i: int, j: int) -> bytes:
    """The 32-byte PRG seed ``s_ij`` of the pairwise mask between devices ``i`` and ``j``."""
    return _pair_key(DOMAIN, own, peer_public, round_, i, j)


def channel_key(own: X25519PrivateKey, peer_public: bytes, round_: int, i: int, j: int) -> bytes:
    """The pairwise channel key of devices ``i`` and ``j`` (the same from either side), so a
    device computes it once for the boxes it sends to and receives from a neighbour."""
    return _pair_key(_CHANNEL, own, peer_public, round_, i, j)


def seal_shares(key: bytes, round_: int, sender: int, recipient: int, data: bytes) -> bytes:
    """Encrypt ``data`` from ``sender`` to ``recipient`` under their :func:`channel_key`.

    The nonce is ``sender || recipient || 0^4``, unique because a sender writes to a recipient
    once per round; the round and both ids are also authenticated as associated data.
    """
    nonce = _NONCE.pack(sender, recipient)
    return ChaCha20Poly1305(key).encrypt(nonce, data, _PAIR.pack(round_, sender, recipient))


def open_shares(key: bytes, round_: int, sender: int, recipient: int, box: bytes) -> bytes:
    """Decrypt what :func:`seal_shares` produced; raise on any tampering."""
    nonce = _NONCE.pack(sender, recipient)
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, box, _PAIR.pack(round_, sender, recipient))
    except InvalidTag:
        raise SecureAggregationError(
            f"device {recipient}: shares from device {sender} fail authentication"
        ) from None
