"""Attestation quotes: what an enclave proves about itself before devices seal updates to it.

A quote binds, under the platform's Ed25519 signature (RFC 8032):

=============  =====  ==========================================================
field          bytes  meaning
=============  =====  ==========================================================
magic          4      ``b"FLQT"``
version        1      ``1``
measurement    32     sha256 over the code and config the enclave runs
enclave key    32     the enclave's X25519 public key (devices seal to it)
signing key    32     the enclave's Ed25519 public key (it signs its transcripts)
data           32     sha256 of other public material it serves (a CKKS public context),
                      or zeros
nonce          32     the verifier's challenge, so an old quote cannot be replayed
signature      64     platform signature over the 165 bytes above, domain-separated
=============  =====  ==========================================================

The simulated enclave's "platform key" is a software Ed25519 key, so its quotes show the
protocol but prove nothing about hardware; a Gramine-SGX or SEV-SNP backend produces the same
fields from a hardware report instead.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedledger.errors import AttestationError
from fedledger.security.identity import Identity, verify_signature

__all__ = ["QUOTE_VERSION", "Quote", "measure", "measure_paths", "sign_quote", "verify_quote"]

QUOTE_VERSION = 1
_MAGIC = b"FLQT"
_SIGNED = b"fedledger/quote/v1\x00"
_BODY = struct.Struct(">4sB32s32s32s32s32s")
_SIZE = _BODY.size + 64


def measure(files: Mapping[str, bytes], config: Mapping[str, Any]) -> bytes:
    """The measurement of an enclave: sha256 over its code files (by name, sorted) and its
    config (canonical JSON). Any changed byte of code or config changes it."""
    h = hashlib.sha256(b"fedledger/enclave-measurement/v1\x00")
    for name in sorted(files):
        h.update(name.encode() + b"\x00" + hashlib.sha256(files[name]).digest())
    h.update(json.dumps(dict(config), sort_keys=True, separators=(",", ":")).encode())
    return h.digest()


def measure_paths(paths: Mapping[str, Path], config: Mapping[str, Any]) -> bytes:
    """:func:`measure` of files on disk (``name -> path``)."""
    return measure({name: p.read_bytes() for name, p in paths.items()}, config)


@dataclass(frozen=True)
class Quote:
    """A signed statement: this measurement holds these keys (and serves ``data``), for this
    nonce."""

    measurement: bytes
    enclave_key: bytes
    signing_key: bytes
    data: bytes
    nonce: bytes
    signature: bytes

    def body(self) -> bytes:
        return _BODY.pack(
            _MAGIC,
            QUOTE_VERSION,
            self.measurement,
            self.enclave_key,
            self.signing_key,
            self.data,
            self.nonce,
        )

    def encode(self) -> bytes:
        return self.body() + self.signature

    def digest(self) -> bytes:
        """What validators anchor on chain with their vote."""
        return hashlib.sha256(b"fedledger/quote-digest/v1\x00" + self.encode()).digest()

    @classmethod
    def decode(cls, data: bytes) -> Quote:
        """Parse a quote, strictly.

        Raises
        ------
        AttestationError
            Wrong size, magic or version.
        """
        if len(data) != _SIZE:
            raise AttestationError(f"malformed quote: {len(data)} bytes, expected {_SIZE}")
        magic, version, measurement, key, signing, extra, nonce = _BODY.unpack_from(data)
        if magic != _MAGIC:
            raise AttestationError("malformed quote: wrong magic")
        if version != QUOTE_VERSION:
            raise AttestationError(f"unknown quote version {version}")
        return cls(measurement, key, signing, extra, nonce, data[_BODY.size :])


def sign_quote(
    platform: Identity,
    measurement: bytes,
    enclave_key: bytes,
    nonce: bytes,
    *,
    signing_key: bytes = bytes(32),
    data: bytes = bytes(32),
) -> Quote:
    """A quote signed with the platform key (the simulated enclave's software key)."""
    for name, value in (
        ("measurement", measurement),
        ("enclave key", enclave_key),
        ("signing key", signing_key),
        ("data", data),
        ("nonce", nonce),
    ):
        if len(value) != 32:
            raise AttestationError(f"{name} must be 32 bytes, got {len(value)}")
    unsigned = Quote(measurement, enclave_key, signing_key, data, nonce, b"")
    body = _SIGNED + unsigned.body()
    return Quote(measurement, enclave_key, signing_key, data, nonce, platform.sign(body))


def verify_quote(
    quote: Quote,
    *,
    platform_key: bytes,
    measurement_ok: Callable[[bytes], bool],
    nonce: bytes,
) -> None:
    """Check a quote before sealing anything to its key.

    Parameters
    ----------
    platform_key
        The platform's Ed25519 public key the verifier trusts.
    measurement_ok
        Whether a measurement is registered (e.g. the ledger's registry).
    nonce
        The challenge this verifier sent; a quote for any other nonce is a replay.

    Raises
    ------
    AttestationError
        Naming the first reason: bad signature, unregistered measurement, stale nonce.
    """
    if not verify_signature(platform_key, quote.signature, _SIGNED + quote.body()):
        raise AttestationError("quote signature does not verify under the platform key")
    if not measurement_ok(quote.measurement):
        raise AttestationError(
            f"enclave measurement {quote.measurement.hex()[:16]}… is not registered: the "
            f"enclave runs other code or config than the authority approved"
        )
    if quote.nonce != nonce:
        raise AttestationError("quote answers another challenge (a replayed quote)")
