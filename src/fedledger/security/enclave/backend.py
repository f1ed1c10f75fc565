"""The narrow interface between the host and an enclave: all a backend has to implement.

The host (devices, validators, the untrusted aggregator) reaches an enclave only through these
calls, with bytes and integers in and out. The shipped backend,
:class:`fedledger.fl.enclave.process.EnclaveProcess`, runs the enclave program
(:class:`fedledger.fl.enclave.service.EnclaveService`) in a separate OS process with software
keys: it shows the protocol but is **simulated: not hardware-protected**.

A hardware backend (Gramine-SGX, AMD SEV-SNP) plugs in by implementing :class:`EnclaveBackend`
around the same enclave program, with these differences:

- **Measurement.** :attr:`EnclaveBackend.measurement` is the hardware's: MRENCLAVE for SGX (the
  Gramine manifest must list the enclave program's Python files and the config as trusted
  files), the launch digest for SEV-SNP. The authority registers that value on chain.
- **Quote.** :meth:`EnclaveBackend.attest` returns a :class:`~.quote.Quote` whose fields come
  from a hardware report: ``report_data`` (64 bytes) carries sha256 over the X25519 key, the
  Ed25519 signing key, the ``data`` digest and the nonce, and the platform signature is the
  vendor's (an SGX DCAP quote verified against Intel's PCK chain, or an SNP report verified
  against AMD's VCEK). Verifiers then call :func:`~.quote.verify_quote` with a platform-key
  check that walks that chain instead of comparing one Ed25519 key.
- **Keys.** The X25519 key (sealed updates), the Ed25519 key (transcripts) and a CKKS secret key
  are generated inside the enclave and never leave it; nothing else changes.
- **Messages.** :meth:`aggregate` and :meth:`decrypt_sum` keep their inputs and outputs; over
  Gramine the frames of :mod:`fedledger.fl.enclave.process` go over the enclave's stdin/stdout
  or a socket unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["AggregateReply", "DecryptReply", "EnclaveBackend"]


@dataclass(frozen=True)
class AggregateReply:
    """What an enclave releases after aggregating sealed updates.

    Attributes
    ----------
    params
        The new global parameters, little-endian float32.
    state
        The strategy's state after the round (safetensors bytes; empty dict if stateless).
    transcript, signature
        The signed :class:`~.transcript.Transcript` of the round.
    """

    params: bytes
    state: bytes
    transcript: bytes
    signature: bytes


@dataclass(frozen=True)
class DecryptReply:
    """A decrypted CKKS sum (little-endian float64) and its signed transcript."""

    values: bytes
    transcript: bytes
    signature: bytes


class EnclaveBackend(Protocol):
    """An attested enclave as the host sees it."""

    @property
    def measurement(self) -> bytes:
        """What the enclave says it runs (the quote carries the attested value)."""
        ...

    def attest(self, nonces: Sequence[bytes]) -> list[bytes]:
        """One encoded :class:`~.quote.Quote` per 32-byte nonce."""
        ...

    def public_material(self) -> bytes:
        """Public material the quotes' ``data`` field hashes (a CKKS public context), or b""."""
        ...

    def aggregate(
        self,
        round_number: int,
        base: bytes,
        state: bytes,
        payloads: Sequence[bytes],
        n_samples: Sequence[int],
        context: bytes = b"",
    ) -> AggregateReply:
        """Open the sealed ``payloads``, screen them, run the strategy from ``base`` (float32
        bytes) and ``state`` (safetensors), and release only the result. ``context`` is the
        round's public context (safetensors: device ids, and optionally a reference update
        and root data), whose digest the transcript names."""
        ...

    def decrypt_sum(
        self,
        round_number: int,
        summed: bytes,
        length: int,
        inputs: Sequence[tuple[bytes, int]],
    ) -> DecryptReply:
        """Decrypt a CKKS sum of the ``inputs`` (payload digest, sample count) — at least two,
        so the enclave is not an oracle for single updates."""
        ...

    def close(self) -> None: ...
