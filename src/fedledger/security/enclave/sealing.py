"""Sealing updates to an attested enclave: X25519 sealed boxes (libsodium via PyNaCl).

A device seals its update to the enclave's X25519 public key from a verified quote; only the
holder of the matching private key (the enclave) can open it. Each sealed box uses a fresh
ephemeral key, so sealing the same update twice gives different bytes.
"""

from __future__ import annotations

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from fedledger.errors import EnvelopeError

__all__ = ["SEALED_OVERHEAD", "EnclaveKey", "open_sealed", "seal"]

SEALED_OVERHEAD = 48  # ephemeral public key (32) + Poly1305 tag (16)


class EnclaveKey:
    """The enclave's X25519 key pair; the private half never leaves the enclave process.

    Parameters
    ----------
    seed
        32 bytes for a reproducible simulation, or None for a fresh random key.
    """

    def __init__(self, seed: bytes | None = None) -> None:
        self._private = PrivateKey.from_seed(seed) if seed is not None else PrivateKey.generate()

    @property
    def public_key(self) -> bytes:
        return bytes(self._private.public_key)

    def open(self, sealed: bytes) -> bytes:
        """Open a box sealed to this key (see :func:`open_sealed`)."""
        return open_sealed(sealed, self._private)

    def __repr__(self) -> str:
        return f"EnclaveKey(public={self.public_key.hex()[:16]}…)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an enclave key cannot be pickled")


def seal(payload: bytes, enclave_key: bytes) -> bytes:
    """Seal ``payload`` to the enclave's X25519 public key."""
    if len(enclave_key) != 32:
        raise EnvelopeError("malformed", f"enclave key must be 32 bytes, got {len(enclave_key)}")
    return bytes(SealedBox(PublicKey(enclave_key)).encrypt(payload))


def open_sealed(sealed: bytes, private_key: PrivateKey) -> bytes:
    """Open a sealed box.

    Raises
    ------
    EnvelopeError
        ``"unsealable"``: the box was not sealed to this key, or was altered.
    """
    try:
        return bytes(SealedBox(private_key).decrypt(sealed))
    except (CryptoError, ValueError, TypeError):
        raise EnvelopeError("unsealable", "the payload is not sealed to this enclave") from None
