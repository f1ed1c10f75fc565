"""Modes with an enclave in them: starting it, and checking its quotes as devices do."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Sequence

from fedledger.errors import AttestationError
from fedledger.fl.enclave.process import EnclaveProcess
from fedledger.fl.enclave.service import enclave_config, expected_measurement, platform_identity
from fedledger.fl.secure.base import SecureAggregator, SecureContext, round_nonce
from fedledger.security.enclave.backend import EnclaveBackend
from fedledger.security.enclave.quote import Quote, verify_quote
from fedledger.security.enclave.transcript import Transcript, verify_transcript

__all__ = ["AttestedMode"]


class AttestedMode(SecureAggregator):
    """A mode whose key holder is an attested enclave.

    Parameters
    ----------
    ctx
        The run's context.
    backend
        The enclave; by default the simulated one, a separate OS process
        (:class:`~fedledger.fl.enclave.process.EnclaveProcess`). A hardware backend goes here.
    """

    def __init__(self, ctx: SecureContext, backend: EnclaveBackend | None = None) -> None:
        super().__init__(ctx)
        self.config = enclave_config(
            self.mode,
            ctx.n_params,
            ctx.strategy.model_dump(),
            ctx.security.model_dump(),
            sizes=ctx.sizes,
            model=ctx.model,
            incentives=(
                None if ctx.incentives == "none" else {"method": ctx.incentives, "seed": ctx.seed}
            ),
        )
        self.approved = expected_measurement(self.config)
        """What the authority approves (and registers on the ledger)."""
        self.platform_key = platform_identity(ctx.seed).public_key
        self.backend: EnclaveBackend = (
            backend if backend is not None else EnclaveProcess(self.config, ctx.seed)
        )
        self.material = self.backend.public_material()
        self._quotes: dict[int, Quote] = {}
        self._pending: threading.Thread | None = None
        self._failure: BaseException | None = None
        self.host_quote = b""
        """The quote the host verified the last transcript with."""
        self.registered: Callable[[bytes], bool] | None = ctx.measurement_ok
        """Which measurements devices accept: the ledger's registry when there is one (set
        by the ledger's set-up), else only :attr:`approved`."""

    def measurement_ok(self, measurement: bytes) -> bool:
        if self.registered is not None:
            return self.registered(measurement)
        return measurement == self.approved

    def verified_quotes(self, nonces: Sequence[bytes], who: Sequence[str]) -> list[Quote]:
        """Quotes for ``nonces``, each checked as its verifier would before trusting the
        enclave: platform signature, registered measurement, fresh nonce, and the public
        material it serves.

        Raises
        ------
        AttestationError
            Naming the verifier that refuses and why.
        """
        raw = self.backend.attest(nonces)
        if len(raw) != len(nonces):
            raise AttestationError(f"{len(raw)} quotes for {len(nonces)} challenges")
        data = hashlib.sha256(self.material).digest() if self.material else bytes(32)
        quotes = []
        for name, nonce, blob in zip(who, nonces, raw, strict=True):
            try:
                quote = Quote.decode(blob)
                verify_quote(
                    quote,
                    platform_key=self.platform_key,
                    measurement_ok=self.measurement_ok,
                    nonce=nonce,
                )
                if quote.data != data:
                    raise AttestationError("the quote does not vouch for the public key material")
            except AttestationError as exc:
                raise AttestationError(f"{name} refuses the enclave: {exc}") from None
            quotes.append(quote)
        return quotes

    def begin_round(self, r: int, devices: Sequence[int], n_samples: Sequence[int]) -> None:
        """Each device attests the enclave with its own nonce — in the background, while the
        devices train (libsodium and the pipe release the GIL)."""
        self._join()
        self._quotes = {}
        self._failure = None
        self._pending = threading.Thread(
            target=self._attest_devices, args=(r, list(devices)), daemon=True
        )
        self._pending.start()

    def _attest_devices(self, r: int, devices: list[int]) -> None:
        try:
            names = [f"device {d}" for d in devices]
            nonces = [round_nonce(self.ctx.seed, r, n) for n in names]
            self._quotes = dict(zip(devices, self.verified_quotes(nonces, names), strict=True))
        except BaseException as exc:  # re-raised in the caller's thread
            self._failure = exc

    def _join(self) -> None:
        """Wait for the devices' attestation (the enclave's pipe serves one call at a time)."""
        if self._pending is not None:
            self._pending.join()
            self._pending = None
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def device_quote(self, device: int) -> Quote:
        """The quote ``device`` verified this round (it seals or encrypts only to that)."""
        self._join()
        quote = self._quotes.get(device)
        if quote is None:
            raise AttestationError(f"device {device} holds no verified quote this round")
        return quote

    def attest(self, nonce: bytes) -> bytes | None:
        self._join()
        return self.verified_quotes([nonce], ["a validator"])[0].encode()

    def check_transcript(self, transcript: bytes, signature: bytes, r: int) -> Transcript:
        """Verify a transcript under the signing key of a freshly attested quote."""
        self._join()
        quote = self.verified_quotes([round_nonce(self.ctx.seed, r, "host")], ["the host"])[0]
        self.host_quote = quote.encode()
        t = verify_transcript(transcript, signature, quote.signing_key)
        if t.round != r or t.measurement != quote.measurement:
            raise AttestationError(f"the enclave's transcript is not for round {r}")
        return t

    def close(self) -> None:
        with contextlib.suppress(BaseException):  # after a failure, which was already raised
            self._join()
        self.backend.close()
