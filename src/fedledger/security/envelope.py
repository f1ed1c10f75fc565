"""The signed update envelope: a canonical, versioned binary encoding of one device's update.

A device seals its (already protected) update payload in an envelope and signs the header with
its Ed25519 key (RFC 8032). The header binds the payload through its sha256 digest and length, so
the signature covers the payload without hashing it twice. Gateways check envelopes and commit
their :meth:`Envelope.digest` values to a Merkle tree (RFC 6962); an auditor who kept only headers
and signatures (see :meth:`EnvelopeHeader.to_json`) can re-verify signatures and recompute those
digests without the payloads.

Wire format, version 1 (all integers unsigned big-endian, ``L`` = scheme length):

=============  ==========  ===============================================================
offset         size        field
=============  ==========  ===============================================================
0              4           magic ``b"FLEV"``
4              1           version, ``1``
5              8           ``round``
13             32          ``device_id`` (member id, see :func:`~.identity.member_id`)
45             8           ``n_samples``
53             1           ``L``, 1–16
54             L           ``scheme``, visible ASCII (0x21–0x7E), e.g. ``plain-f32``
54 + L         32          ``payload_digest`` = sha256(payload)
86 + L         16          ``nonce``
102 + L        8           ``payload_length`` = ``n``
110 + L        64          Ed25519 signature
174 + L        n           payload
=============  ==========  ===============================================================

Bytes ``0 .. 110 + L`` are the *header bytes*. The signed message is
``b"fedledger/envelope/v1\\x00" + header bytes`` and the envelope digest is
``sha256(b"fedledger/envelope-digest/v1\\x00" + header bytes + signature)``. Every header has
exactly one encoding, so decoding and re-encoding is the identity.

Replay and duplicate checks are the gateway's job. Ed25519 lets a *signer* produce several
valid signatures of one header, so a gateway must detect duplicates by ``(round, device_id)``,
not by envelope digest.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from fedledger.errors import EnvelopeError
from fedledger.security.identity import Identity, verify_signature

__all__ = [
    "ENVELOPE_VERSION",
    "MAGIC",
    "Envelope",
    "EnvelopeHeader",
    "envelope_digest",
    "seal_envelope",
    "verify_envelope",
    "verify_header",
]

MAGIC: Final = b"FLEV"
ENVELOPE_VERSION: Final = 1
SIGN_DOMAIN: Final = b"fedledger/envelope/v1\x00"
DIGEST_DOMAIN: Final = b"fedledger/envelope-digest/v1\x00"

_U64: Final = 1 << 64
_ID_SIZE: Final = 32
_DIGEST_SIZE: Final = 32
_NONCE_SIZE: Final = 16
_SIGNATURE_SIZE: Final = 64
_MAX_SCHEME: Final = 16

# magic, version, round, device_id, n_samples, scheme length | scheme | digest, nonce, length
_HEAD: Final = struct.Struct(">4sBQ32sQB")
_TAIL: Final = struct.Struct(">32s16sQ")
_JSON_KEYS: Final = frozenset(
    (
        "version",
        "round",
        "device_id",
        "n_samples",
        "scheme",
        "payload_digest",
        "nonce",
        "payload_length",
    )
)
_HEX: Final = frozenset("0123456789abcdef")


def _malformed(message: str) -> EnvelopeError:
    return EnvelopeError("malformed", message)


def _check_u64(name: str, value: object) -> None:
    if type(value) is not int or not 0 <= value < _U64:
        raise _malformed(f"{name} must be an unsigned 64-bit integer, got {value!r}")


def _check_bytes(name: str, value: object, size: int) -> None:
    if type(value) is not bytes or len(value) != size:
        raise _malformed(f"{name} must be {size} bytes")


def _check_scheme(scheme: object) -> None:
    if (
        type(scheme) is not str
        or not 1 <= len(scheme) <= _MAX_SCHEME
        or not all("!" <= c <= "~" for c in scheme)
    ):
        raise _malformed(f"scheme must be 1-{_MAX_SCHEME} visible ASCII characters, got {scheme!r}")


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    """The signed fields of an envelope; validated on construction.

    Parameters
    ----------
    round
        Round number the update belongs to.
    device_id
        32-byte member id of the sender.
    n_samples
        Number of local training samples (the FedAvg weight, McMahan et al. 2017).
    scheme
        How the payload is protected/encoded, e.g. ``"plain-f32"``.
    payload_digest
        sha256 of the payload.
    nonce
        16 bytes chosen by the device.
    payload_length
        Payload size in bytes.

    Raises
    ------
    EnvelopeError
        ``reason="malformed"`` if a field is out of range or of the wrong type or size.
    """

    round: int
    device_id: bytes
    n_samples: int
    scheme: str
    payload_digest: bytes
    nonce: bytes
    payload_length: int
    _bytes: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_u64("round", self.round)
        _check_bytes("device_id", self.device_id, _ID_SIZE)
        _check_u64("n_samples", self.n_samples)
        _check_scheme(self.scheme)
        _check_bytes("payload_digest", self.payload_digest, _DIGEST_SIZE)
        _check_bytes("nonce", self.nonce, _NONCE_SIZE)
        _check_u64("payload_length", self.payload_length)
        scheme = self.scheme.encode("ascii")
        encoded = b"".join(
            (
                _HEAD.pack(
                    MAGIC, ENVELOPE_VERSION, self.round, self.device_id, self.n_samples, len(scheme)
                ),
                scheme,
                _TAIL.pack(self.payload_digest, self.nonce, self.payload_length),
            )
        )
        object.__setattr__(self, "_bytes", encoded)

    def header_bytes(self) -> bytes:
        """The canonical header encoding: wire bytes from the magic through the payload length."""
        return self._bytes

    def signing_message(self) -> bytes:
        """What the device signs: ``b"fedledger/envelope/v1\\x00" + header bytes``."""
        return SIGN_DOMAIN + self._bytes

    def to_json(self) -> dict[str, int | str]:
        """A JSON-ready dict (byte fields as lowercase hex) for JSON-lines audit logs."""
        return {
            "version": ENVELOPE_VERSION,
            "round": self.round,
            "device_id": self.device_id.hex(),
            "n_samples": self.n_samples,
            "scheme": self.scheme,
            "payload_digest": self.payload_digest.hex(),
            "nonce": self.nonce.hex(),
            "payload_length": self.payload_length,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> EnvelopeHeader:
        """Inverse of :meth:`to_json`; strict about keys, types and hex.

        Raises
        ------
        EnvelopeError
            ``"unknown-version"`` for another version, ``"malformed"`` for anything else wrong.
        """
        if not isinstance(obj, Mapping) or set(obj) != _JSON_KEYS:
            raise _malformed(f"a JSON header has exactly the keys {sorted(_JSON_KEYS)}")
        if obj["version"] != ENVELOPE_VERSION or type(obj["version"]) is not int:
            raise EnvelopeError("unknown-version", f"unknown header version {obj['version']!r}")

        def unhex(key: str) -> bytes:
            value = obj[key]
            if type(value) is not str or len(value) % 2 or not set(value) <= _HEX:
                raise _malformed(f"{key} must be a lowercase hex string")
            return bytes.fromhex(value)

        return cls(
            round=obj["round"],  # type: ignore[arg-type]  # checked in __post_init__
            device_id=unhex("device_id"),
            n_samples=obj["n_samples"],  # type: ignore[arg-type]
            scheme=obj["scheme"],  # type: ignore[arg-type]
            payload_digest=unhex("payload_digest"),
            nonce=unhex("nonce"),
            payload_length=obj["payload_length"],  # type: ignore[arg-type]
        )


@dataclass(frozen=True, slots=True)
class Envelope:
    """A header, the device's signature over it, and the payload it binds.

    Construction checks that the payload has the declared length and digest, so an
    ``Envelope`` is always internally consistent (the signature is checked separately, by
    :func:`verify_envelope`, against the key the registry holds for ``header.device_id``).

    Raises
    ------
    EnvelopeError
        ``"malformed"`` for a wrong signature size or payload length, ``"digest-mismatch"`` if
        sha256(payload) differs from ``header.payload_digest``.
    """

    header: EnvelopeHeader
    signature: bytes = field(repr=False)
    payload: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.header, EnvelopeHeader):
            raise _malformed("header must be an EnvelopeHeader")
        _check_bytes("signature", self.signature, _SIGNATURE_SIZE)
        if type(self.payload) is not bytes:
            raise _malformed("payload must be bytes")
        if len(self.payload) != self.header.payload_length:
            raise _malformed(
                f"payload has {len(self.payload)} bytes, header declares "
                f"{self.header.payload_length}"
            )
        if hashlib.sha256(self.payload).digest() != self.header.payload_digest:
            raise EnvelopeError("digest-mismatch", "sha256(payload) differs from the header")

    def header_bytes(self) -> bytes:
        """The canonical header encoding (see the module docstring)."""
        return self.header.header_bytes()

    def digest(self) -> bytes:
        """The 32-byte envelope digest, the gateway's Merkle leaf: see :func:`envelope_digest`."""
        return envelope_digest(self.header, self.signature)

    def encode(self) -> bytes:
        """The wire encoding: header bytes, signature, payload."""
        return b"".join((self.header.header_bytes(), self.signature, self.payload))

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, *, max_payload: int) -> Envelope:
        """Parse one envelope, strictly; the signature is *not* checked here.

        Parameters
        ----------
        data
            Exactly one encoded envelope (no trailing bytes); any contiguous byte buffer.
        max_payload
            Largest accepted payload, in bytes; checked against the declared length before the
            payload is read or hashed.

        Raises
        ------
        EnvelopeError
            ``"malformed"`` (wrong magic, truncated, trailing bytes, invalid field),
            ``"unknown-version"``, ``"oversize"`` or ``"digest-mismatch"``.
        """
        view = memoryview(data).cast("B")
        if len(view) < 5 or bytes(view[:4]) != MAGIC:
            raise _malformed("not an envelope: wrong magic or too short")
        if view[4] != ENVELOPE_VERSION:
            raise EnvelopeError("unknown-version", f"unknown envelope version {view[4]}")
        if len(view) < _HEAD.size:
            raise _malformed("truncated header")
        _, _, round_, device_id, n_samples, scheme_len = _HEAD.unpack_from(view)
        tail_at = _HEAD.size + scheme_len
        payload_at = tail_at + _TAIL.size + _SIGNATURE_SIZE
        if len(view) < payload_at:
            raise _malformed("truncated header")
        try:
            scheme = bytes(view[_HEAD.size : tail_at]).decode("ascii")
        except UnicodeDecodeError:
            raise _malformed("scheme is not ASCII") from None
        payload_digest, nonce, payload_length = _TAIL.unpack_from(view, tail_at)
        if payload_length > max_payload:
            raise EnvelopeError(
                "oversize", f"payload of {payload_length} bytes exceeds {max_payload}"
            )
        if len(view) != payload_at + payload_length:
            raise _malformed(
                f"{len(view) - payload_at} payload bytes present, header declares {payload_length}"
            )
        header = EnvelopeHeader(
            round=round_,
            device_id=device_id,
            n_samples=n_samples,
            scheme=scheme,
            payload_digest=payload_digest,
            nonce=nonce,
            payload_length=payload_length,
        )
        signature = bytes(view[payload_at - _SIGNATURE_SIZE : payload_at])
        return cls(header, signature, bytes(view[payload_at:]))


def envelope_digest(header: EnvelopeHeader, signature: bytes) -> bytes:
    """``sha256(b"fedledger/envelope-digest/v1\\x00" + header bytes + signature)``.

    Computable from a stored header and signature alone, without the payload.
    """
    return hashlib.sha256(DIGEST_DOMAIN + header.header_bytes() + signature).digest()


def verify_header(header: EnvelopeHeader, signature: bytes, public_key: bytes) -> bool:
    """Whether ``signature`` is the Ed25519 signature (RFC 8032) of ``header`` under the key.

    Never raises. An auditor uses this on headers and signatures kept without payloads.
    """
    if not isinstance(header, EnvelopeHeader):
        return False
    return verify_signature(public_key, signature, header.signing_message())


def verify_envelope(env: Envelope, public_key: bytes) -> bool:
    """Whether ``env`` carries a valid signature under ``public_key`` (never raises).

    The payload is bound through the header's digest, which :class:`Envelope` checks on
    construction. Registration, round binding and duplicates are the gateway's checks.
    """
    if not isinstance(env, Envelope):
        return False
    return verify_header(env.header, env.signature, public_key)


def seal_envelope(
    identity: Identity,
    round: int,
    n_samples: int,
    scheme: str,
    payload: bytes,
    nonce: bytes,
) -> Envelope:
    """Build and sign a device's envelope.

    Parameters
    ----------
    identity
        The sending device; its ``id`` becomes ``device_id``.
    round, n_samples, scheme
        Header fields (see :class:`EnvelopeHeader`).
    payload
        The protected update bytes.
    nonce
        16 bytes; the caller chooses them (from a seeded generator in simulations, from
        ``os.urandom`` on real devices).

    Raises
    ------
    EnvelopeError
        ``"malformed"`` if a field is invalid.
    """
    if type(payload) is not bytes:
        raise _malformed("payload must be bytes")
    header = EnvelopeHeader(
        round=round,
        device_id=identity.id,
        n_samples=n_samples,
        scheme=scheme,
        payload_digest=hashlib.sha256(payload).digest(),
        nonce=nonce,
        payload_length=len(payload),
    )
    env = object.__new__(Envelope)  # the digest was just computed from this payload
    object.__setattr__(env, "header", header)
    object.__setattr__(env, "signature", identity.sign(header.signing_message()))
    object.__setattr__(env, "payload", payload)
    return env
