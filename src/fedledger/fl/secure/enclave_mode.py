"""``enclave``: updates sealed to an attested enclave, which aggregates them with any strategy.

Each device verifies the enclave's quote (registered measurement, platform signature, its own
fresh nonce) and seals its float32 update to the quoted X25519 key. Gateways see sealed bytes
only. The enclave opens them, screens them, runs the configured strategy on the individual
updates — so median, Krum and the other robust rules work — and releases only the new
parameters, the strategy state and a signed transcript.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from fedledger.errors import AttestationError
from fedledger.fl.secure.attested import AttestedMode
from fedledger.fl.secure.base import RoundInputs, SecureContext, SecureOutcome, Submission
from fedledger.security.enclave.backend import EnclaveBackend
from fedledger.security.enclave.sealing import SEALED_OVERHEAD, seal
from fedledger.security.enclave.transcript import Transcript, context_digest, vector_digest
from fedledger.security.payload import encode_f32
from fedledger.strategies.base import Strategy

__all__ = ["SEALED_F32", "EnclaveMode", "encode_round_context"]


def encode_round_context(devices: Sequence[int], inputs: RoundInputs | None) -> bytes:
    """The round's public context for the enclave, as safetensors: the device id of every
    input, and whichever of FLTrust's reference update, the validators' root data (and the
    benign-shift probe's inputs), their valuation rows and the last global step are given."""
    tensors = {"devices": torch.tensor(list(devices), dtype=torch.int64)}
    if inputs is not None:
        if inputs.reference is not None:
            tensors["reference"] = inputs.reference.detach().to(torch.float32).contiguous()
        if inputs.root_x is not None and inputs.root_y is not None:
            tensors["root_x"] = inputs.root_x.detach().to(torch.float32).contiguous()
            tensors["root_y"] = inputs.root_y.detach().to(torch.int64).contiguous()
        if inputs.valuation_x is not None and inputs.valuation_y is not None:
            tensors["valuation_x"] = inputs.valuation_x.detach().to(torch.float32).contiguous()
            tensors["valuation_y"] = inputs.valuation_y.detach().to(torch.int64).contiguous()
        if inputs.step is not None:
            tensors["step"] = inputs.step.detach().to(torch.float32).contiguous()
        if inputs.shift is not None:
            high, groups, benign = inputs.shift
            tensors["shift_high"] = high.detach().to(torch.float32).contiguous()
            tensors["shift_groups"] = groups.detach().to(torch.int64).contiguous()
            tensors["shift_benign"] = torch.tensor([benign], dtype=torch.int64)
    return save_tensors(tensors)


SEALED_F32 = "sealed-f32"
"""Envelope scheme: a plain-f32 update in an X25519 sealed box."""


class EnclaveMode(AttestedMode):
    """See the module docstring."""

    mode = "enclave"
    scheme = SEALED_F32

    def __init__(self, ctx: SecureContext, backend: EnclaveBackend | None = None) -> None:
        super().__init__(ctx, backend)
        self._speculation: (
            tuple[list[tuple[bytes, int]], threading.Thread, list[SecureOutcome | BaseException]]
            | None
        ) = None

    def protect(self, r: int, device: int, update: np.ndarray) -> bytes | None:
        return seal(
            encode_f32(np.ascontiguousarray(update, dtype=np.float32)),
            self.device_quote(device).enclave_key,
        )

    def payload_size(self) -> int | None:
        return 4 * self.ctx.n_params + SEALED_OVERHEAD

    def speculate(
        self,
        r: int,
        base: torch.Tensor,
        strategy: Strategy,
        submissions: Sequence[Submission],
        round_inputs: RoundInputs | None = None,
    ) -> None:
        """Send the round's sealed updates to the enclave in the background: it aggregates on
        another core while the gateways check the envelopes."""
        self._join()
        key = [(s.digest(), s.n_samples) for s in submissions]
        box: list[SecureOutcome | BaseException] = []

        def work() -> None:
            try:
                box.append(self._aggregate(r, base, strategy, submissions, round_inputs))
            except BaseException as exc:  # aggregate() again raises it in the caller
                box.append(exc)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        self._speculation = (key, thread, box)

    def speculated(self, submissions: Sequence[Submission]) -> SecureOutcome | None:
        if self._speculation is None:
            return None
        key, thread, box = self._speculation
        thread.join()
        self._speculation = None
        result = box[0] if box else None
        if isinstance(result, SecureOutcome) and key == [
            (s.digest(), s.n_samples) for s in submissions
        ]:
            return result
        return None

    def close(self) -> None:
        if self._speculation is not None:
            self._speculation[1].join()
            self._speculation = None
        super().close()

    def aggregate(
        self,
        r: int,
        base: torch.Tensor,
        strategy: Strategy,
        submissions: Sequence[Submission],
        round_inputs: RoundInputs | None = None,
    ) -> SecureOutcome:
        self._join()
        if self._speculation is not None:  # never two requests on the enclave's pipe at once
            self._speculation[1].join()
            self._speculation = None
        return self._aggregate(r, base, strategy, submissions, round_inputs)

    def _aggregate(
        self,
        r: int,
        base: torch.Tensor,
        strategy: Strategy,
        submissions: Sequence[Submission],
        round_inputs: RoundInputs | None = None,
    ) -> SecureOutcome:
        state = save_tensors({k: v.contiguous() for k, v in strategy.state_dict().items()})
        context = encode_round_context([s.device for s in submissions], round_inputs)
        reply = self.backend.aggregate(
            r,
            base.detach().numpy().astype("<f4").tobytes(),
            state,
            [s.payload for s in submissions],
            [s.n_samples for s in submissions],
            context,
        )
        t = self.check_transcript(reply.transcript, reply.signature, r)
        out = np.frombuffer(reply.params, dtype="<f4")
        expected_inputs = tuple((s.digest(), s.n_samples) for s in submissions)
        if (
            t.inputs != expected_inputs
            or t.output != vector_digest(out)
            or t.context != context_digest(context)
        ):
            raise AttestationError(
                f"round {r}: the enclave's transcript does not match what it was sent and released"
            )
        own = copy.deepcopy(strategy)
        own.load_state_dict(dict(load_tensors(reply.state)) if reply.state else {})
        params = torch.from_numpy(out.astype(np.float32))
        contributions, riders = _contributions(r, t, submissions, self.ctx.incentives)
        return SecureOutcome(
            params=params,
            strategy=own,
            accepted=list(t.accepted),
            rejected=dict(t.rejected),
            flagged=sorted(submissions[i].device for i in t.flagged if submissions[i].device >= 0),
            evidence={
                "transcript": reply.transcript.hex(),
                "signature": reply.signature.hex(),
                "quote": self.host_quote.hex(),
            },
            contributions=contributions,
            free_riders=riders,
            evaluations=t.evaluations,
        )


def _contributions(
    r: int, t: Transcript, submissions: Sequence[Submission], method: str
) -> tuple[dict[int, float] | None, dict[int, str]]:
    """The transcript's scores and free riders by device, checked: the measure the run
    configured, and only accepted inputs of the round's own devices, each scored once."""
    if method == "none":
        if t.contribution != "none" or t.scores or t.free_riders:
            raise AttestationError(f"round {r}: the enclave scored contributions unasked")
        return None, {}
    if t.contribution != method:
        raise AttestationError(
            f"round {r}: the enclave scored contributions with {t.contribution!r}, not {method!r}"
        )
    own = {i for i in t.accepted if 0 <= i < len(submissions) and submissions[i].device >= 0}
    scored = [i for i, _ in t.scores]
    if sorted(scored) != sorted(own) or not {i for i, _ in t.free_riders} <= own:
        raise AttestationError(
            f"round {r}: the enclave's scores are not one for each accepted device's update"
        )
    return (
        {submissions[i].device: v for i, v in t.scores},
        {submissions[i].device: kind for i, kind in t.free_riders},
    )
