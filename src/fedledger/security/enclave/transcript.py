"""The enclave's signed transcript: which inputs it was given, which it used, what it released.

An enclave aggregates updates nobody else can read, so its output is checkable only through
what it signs. A transcript binds, under the Ed25519 key that the enclave's attestation quote
vouches for (:attr:`~fedledger.security.enclave.quote.Quote.signing_key`):

- the round, the mode and the enclave's measurement,
- the digest of the base model it started from,
- every input it was given (sha256 of the protected payload, as signed by the device in its
  envelope and committed by a gateway, with its sample count), in order,
- which inputs it accepted and why it refused the others,
- the digest of the round's public context (device ids, the validators' root data and
  reference update: what a screening strategy used besides the updates), and which accepted
  inputs the strategy flagged as anomalous and left out,
- the digest of what it released (the new global parameters, or a decrypted sum),
- with contribution scoring configured: the measure, its score of every scored input (the
  accepted inputs of the round's own devices), the inputs it found free riding and how, and
  how many models it evaluated (:mod:`fedledger.incentives`). The round's rewards follow
  from these, so validators vote for a rewards vector the enclave vouches for.

Validators check the signature and that the inputs are the envelopes the gateways committed;
an auditor checks the same offline. The encoding is canonical JSON with a version field;
nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from fedledger.errors import AttestationError
from fedledger.security.identity import Identity, verify_signature

__all__ = [
    "TRANSCRIPT_FORMAT",
    "Transcript",
    "context_digest",
    "vector_digest",
    "verify_transcript",
]

TRANSCRIPT_FORMAT: Final = "fedledger-transcript/v3"
_SIGNED: Final = b"fedledger/transcript/v3\x00"


def vector_digest(values: np.ndarray) -> bytes:
    """sha256 of a vector's little-endian bytes (float32 or float64 as given)."""
    array = np.ascontiguousarray(values)
    return hashlib.sha256(
        array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    ).digest()


def context_digest(context: bytes) -> bytes:
    """What a transcript's ``context`` field holds: sha256 of the round-context blob, or 32
    zero bytes when there is none."""
    return hashlib.sha256(context).digest() if context else bytes(32)


@dataclass(frozen=True)
class Transcript:
    """What an enclave did in one round (see the module docstring)."""

    round: int
    mode: str
    measurement: bytes
    strategy: str
    base: bytes
    inputs: tuple[tuple[bytes, int], ...]
    accepted: tuple[int, ...]
    rejected: tuple[tuple[int, str], ...]
    output: bytes
    context: bytes = bytes(32)
    flagged: tuple[int, ...] = field(default=())
    contribution: str = "none"
    """The contribution measure (``"none"``: the enclave scored nothing)."""
    scores: tuple[tuple[int, float], ...] = field(default=())
    """(input index, contribution score) of every scored input."""
    free_riders: tuple[tuple[int, str], ...] = field(default=())
    """(input index, kind) of every scored input found free riding."""
    evaluations: int = 0
    """Models the contribution measure evaluated."""

    def to_json(self) -> dict[str, Any]:
        return {
            "format": TRANSCRIPT_FORMAT,
            "round": self.round,
            "mode": self.mode,
            "measurement": self.measurement.hex(),
            "strategy": self.strategy,
            "base": self.base.hex(),
            "inputs": [{"digest": d.hex(), "n_samples": n} for d, n in self.inputs],
            "accepted": list(self.accepted),
            "rejected": [{"input": i, "reason": r} for i, r in self.rejected],
            "output": self.output.hex(),
            "context": self.context.hex(),
            "flagged": list(self.flagged),
            "contribution": self.contribution,
            "scores": [{"input": i, "score": v} for i, v in self.scores],
            "free_riders": [{"input": i, "kind": k} for i, k in self.free_riders],
            "evaluations": self.evaluations,
        }

    def encode(self) -> bytes:
        """Canonical JSON bytes (what is signed)."""
        return json.dumps(
            self.to_json(), sort_keys=True, separators=(",", ":"), allow_nan=False
        ).encode()

    def digest(self) -> bytes:
        return hashlib.sha256(_SIGNED + self.encode()).digest()

    def sign(self, key: Identity) -> bytes:
        """The enclave's Ed25519 signature over :meth:`encode`."""
        return key.sign(_SIGNED + self.encode())

    @classmethod
    def decode(cls, data: bytes) -> Transcript:
        """Parse a transcript strictly; raises :class:`AttestationError` naming the problem."""
        try:
            obj = json.loads(data)
            if obj.get("format") != TRANSCRIPT_FORMAT:
                raise AttestationError(f"unknown transcript format {obj.get('format')!r}")
            t = cls(
                round=int(obj["round"]),
                mode=str(obj["mode"]),
                measurement=bytes.fromhex(obj["measurement"]),
                strategy=str(obj["strategy"]),
                base=bytes.fromhex(obj["base"]),
                inputs=tuple(
                    (bytes.fromhex(x["digest"]), int(x["n_samples"])) for x in obj["inputs"]
                ),
                accepted=tuple(int(i) for i in obj["accepted"]),
                rejected=tuple((int(x["input"]), str(x["reason"])) for x in obj["rejected"]),
                output=bytes.fromhex(obj["output"]),
                context=bytes.fromhex(obj["context"]),
                flagged=tuple(int(i) for i in obj["flagged"]),
                contribution=str(obj["contribution"]),
                scores=tuple((int(x["input"]), float(x["score"])) for x in obj["scores"]),
                free_riders=tuple((int(x["input"]), str(x["kind"])) for x in obj["free_riders"]),
                evaluations=int(obj["evaluations"]),
            )
            canonical = t.encode()  # refuses NaN and infinite scores
        except AttestationError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AttestationError(f"malformed transcript: {exc}") from None
        if canonical != data:
            raise AttestationError("malformed transcript: not in canonical form")
        return t


def verify_transcript(data: bytes, signature: bytes, signing_key: bytes) -> Transcript:
    """Decode a transcript and check the enclave's signature over it.

    Parameters
    ----------
    data
        The transcript's canonical bytes.
    signature
        The enclave's Ed25519 signature.
    signing_key
        The enclave's Ed25519 public key, taken from a verified quote.

    Raises
    ------
    AttestationError
        If the signature does not verify or the transcript is malformed.
    """
    if not verify_signature(signing_key, signature, _SIGNED + data):
        raise AttestationError("transcript signature does not verify under the enclave's key")
    return Transcript.decode(data)
