"""``ckks``: updates encrypted under the enclave's CKKS key; the aggregator adds ciphertexts and
only the enclave decrypts, and only the sum (TenSEAL; Cheon, Kim, Kim, Song, ASIACRYPT 2017).

Each device verifies the enclave's quote — which also vouches for the CKKS public context by
its digest — and encrypts its update scaled by ``n_samples / max_weight``. With
``security.ckks_layers`` only the named parameters are encrypted and the rest travels in clear.
The untrusted aggregator adds the ciphertexts of the accepted envelopes without any secret key;
the enclave decrypts the sum of at least two updates and signs a transcript naming the digest
of the ciphertext it decrypted, which anyone holding the envelopes can recompute.

Payload (scheme ``ckks``): a 4-byte big-endian length, the encrypted part
(:func:`fedledger.security.ckks.encode_payload`), then the clear part as little-endian float32.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

import numpy as np
import torch

from fedledger.errors import AttestationError, ConfigError, SecureAggregationError
from fedledger.fl.enclave.service import MIN_SUM_INPUTS
from fedledger.fl.secure.attested import AttestedMode
from fedledger.fl.secure.base import (
    RoundInputs,
    SecureContext,
    SecureOutcome,
    Submission,
    apply_mean,
)
from fedledger.security.ckks import (
    add_payloads,
    encrypt_update,
    public_context_from,
    select,
    unselect,
)
from fedledger.security.enclave.backend import EnclaveBackend
from fedledger.security.enclave.transcript import vector_digest
from fedledger.strategies.base import Strategy

__all__ = ["CKKS", "CkksMode", "layer_ranges"]

CKKS = "ckks"
"""Envelope scheme of a CKKS payload."""

_LEN = struct.Struct(">I")


def layer_ranges(
    names: Sequence[str], sizes: Sequence[int], selected: Sequence[str]
) -> list[tuple[int, int]]:
    """Flat-vector ranges of the ``selected`` parameters (all of them if none is selected)."""
    if not selected:
        return [(0, sum(sizes))]
    unknown = sorted(set(selected) - set(names))
    if unknown:
        raise ConfigError(
            "security.ckks_layers",
            f"unknown parameter {unknown[0]!r}; the model has {', '.join(names)}",
        )
    ranges, at = [], 0
    for name, size in zip(names, sizes, strict=True):
        if name in selected:
            ranges.append((at, at + size))
        at += size
    return ranges


class CkksMode(AttestedMode):
    """See the module docstring."""

    mode = "ckks"
    scheme = CKKS

    def __init__(self, ctx: SecureContext, backend: EnclaveBackend | None = None) -> None:
        self.ranges = layer_ranges(ctx.names, ctx.sizes, ctx.security.ckks_layers)
        super().__init__(ctx, backend)
        self.context = public_context_from(self.material)
        self.slots = ctx.security.ckks_poly_degree // 2
        self.n_secret = sum(b - a for a, b in self.ranges)

    def protect(self, r: int, device: int, update: np.ndarray) -> bytes | None:
        self.device_quote(device)  # it encrypts only under a context an attested quote vouches for
        x = np.asarray(update, dtype=np.float64) * self._ratios[device]
        secret, clear = select(x, self.ranges)
        encrypted = encrypt_update(self.context, secret, self.slots)
        return _LEN.pack(len(encrypted)) + encrypted + clear.astype("<f4").tobytes()

    def begin_round(self, r: int, devices: Sequence[int], n_samples: Sequence[int]) -> None:
        super().begin_round(r, devices, n_samples)
        self._ratios = {
            d: self.weight_ratio(int(n)) for d, n in zip(devices, n_samples, strict=True)
        }

    def _split(self, payload: bytes) -> tuple[bytes, np.ndarray]:
        n_clear = self.ctx.n_params - self.n_secret
        if len(payload) < 4:
            raise SecureAggregationError("malformed")
        (size,) = _LEN.unpack_from(payload)
        if len(payload) != 4 + size + 4 * n_clear:
            raise SecureAggregationError("malformed")
        clear = np.frombuffer(payload, dtype="<f4", offset=4 + size).astype(np.float64)
        if not np.isfinite(clear).all():
            raise SecureAggregationError("non-finite")
        return payload[4 : 4 + size], clear

    def summed(
        self, submissions: Sequence[Submission]
    ) -> tuple[bytes, np.ndarray, list[int], dict[int, str]]:
        """What the untrusted aggregator computes: the ciphertext sum and the clear sum of the
        well-formed submissions (validators recompute it to check the enclave's transcript)."""
        parts: list[bytes] = []
        clear_sum = np.zeros(self.ctx.n_params - self.n_secret)
        accepted: list[int] = []
        rejected: dict[int, str] = {}
        for i, sub in enumerate(submissions):
            try:
                encrypted, clear = self._split(sub.payload)
            except SecureAggregationError as exc:
                rejected[i] = str(exc)
                continue
            parts.append(encrypted)
            clear_sum += clear
            accepted.append(i)
        total = add_payloads(self.context, parts) if len(parts) >= MIN_SUM_INPUTS else b""
        return total, clear_sum, accepted, rejected

    def aggregate(
        self,
        r: int,
        base: torch.Tensor,
        strategy: Strategy,
        submissions: Sequence[Submission],
        round_inputs: RoundInputs | None = None,
    ) -> SecureOutcome:
        total, clear_sum, accepted, rejected = self.summed(submissions)
        if len(accepted) < MIN_SUM_INPUTS:  # one update alone cannot be decrypted privately
            rejected.update({i: "too-few-to-sum" for i in accepted})
            return SecureOutcome(base.clone(), strategy, [], rejected, {})
        inputs = [(submissions[i].digest(), submissions[i].n_samples) for i in accepted]
        self._join()
        reply = self.backend.decrypt_sum(r, total, self.n_secret, inputs)
        t = self.check_transcript(reply.transcript, reply.signature, r)
        values = np.frombuffer(reply.values, dtype="<f8")
        if (
            t.base != hashlib.sha256(total).digest()
            or t.inputs != tuple(inputs)
            or t.output != vector_digest(values)
        ):
            raise AttestationError(
                f"round {r}: the enclave's transcript does not match the sum it was sent"
            )
        full = unselect(values, clear_sum, self.ranges, self.ctx.n_params)
        weight = sum(n for _, n in inputs)
        params, own = apply_mean(strategy, base, full / (weight / self.ctx.max_weight))
        return SecureOutcome(
            params=params,
            strategy=own,
            accepted=accepted,
            rejected=rejected,
            evidence={
                "transcript": reply.transcript.hex(),
                "signature": reply.signature.hex(),
                "quote": self.host_quote.hex(),
                "ciphertext_bytes": len(total),
            },
        )
