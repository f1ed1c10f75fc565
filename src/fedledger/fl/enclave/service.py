"""The enclave program: keys, attestation, and aggregation of updates nobody else can read.

It runs inside the enclave (in the shipped backend: a separate OS process, simulated, not
hardware-protected). It holds an X25519 key that devices seal their updates to, an Ed25519 key
that signs its transcripts, and for ``ckks`` a CKKS secret key; none of them leaves it. It
answers four requests:

- ``attest(nonces)``: one quote per nonce over its measurement and public keys, signed by the
  platform key;
- ``aggregate``: open the sealed updates, refuse those that do not open, have the wrong size
  or non-finite values, run the configured strategy (robust strategies included) on the
  individual updates, with incentives configured score each device's contribution and screen
  for free riders (:func:`fedledger.incentives.assess_round` on the validators' valuation
  rows), and release only the new parameters, the strategy state and a signed transcript
  with the scores;
- ``decrypt_sum``: decrypt a CKKS sum of at least two inputs;
- ``public_material``: the CKKS public context its quotes vouch for.

Its measurement is sha256 over the files of :data:`ENCLAVE_CODE` as they are on disk where it
runs, and the config it was started with; the authority computes the expected value from the
approved code and registers it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import nn

from fedledger.config import StrategyConfig
from fedledger.errors import EnvelopeError, SecureAggregationError
from fedledger.fl.params import ParamLayout
from fedledger.fl.probe import benign_shift, root_loss_increase, valuation_quality
from fedledger.fl.tasks import Task, task_from_labels
from fedledger.incentives import RoundGame, assess_round
from fedledger.models.registry import create_model
from fedledger.security.ckks import CkksKeys
from fedledger.security.enclave.backend import AggregateReply, DecryptReply
from fedledger.security.enclave.quote import measure, sign_quote
from fedledger.security.enclave.sealing import EnclaveKey
from fedledger.security.enclave.transcript import Transcript, context_digest, vector_digest
from fedledger.security.identity import Identity, derive_identity
from fedledger.security.payload import decode_f32
from fedledger.strategies.base import RoundContext, Strategy
from fedledger.strategies.registry import create_strategy

__all__ = [
    "ENCLAVE_CODE",
    "MIN_SUM_INPUTS",
    "EnclaveService",
    "code_files",
    "enclave_config",
    "expected_measurement",
    "platform_identity",
]

ENCLAVE_CODE: Final = (
    "config.py",
    "errors.py",
    "fl/enclave/*.py",
    "fl/frames.py",
    "fl/params.py",
    "fl/probe.py",
    "fl/tasks.py",
    "incentives/*.py",
    "models/*.py",
    "report/metrics.py",
    "security/ckks.py",
    "security/enclave/*.py",
    "security/identity.py",
    "security/payload.py",
    "strategies/*.py",
)
"""The enclave program's files, relative to the ``fedledger`` package: what it measures."""

MIN_SUM_INPUTS: Final = 2
"""The fewest distinct updates the enclave decrypts a CKKS sum of."""


@dataclass(frozen=True)
class Scored:
    """What the enclave found of a round's contributions, by input index."""

    scores: tuple[tuple[int, float], ...] = ()
    free_riders: tuple[tuple[int, str], ...] = ()
    evaluations: int = 0


def code_files(root: Path | None = None) -> dict[str, bytes]:
    """The :data:`ENCLAVE_CODE` files under ``root`` (default: this installed package)."""
    base = root if root is not None else Path(__file__).resolve().parents[2]
    files: dict[str, bytes] = {}
    for pattern in ENCLAVE_CODE:
        for path in sorted(base.glob(pattern)):
            files[path.relative_to(base).as_posix()] = path.read_bytes()
    return files


def enclave_config(
    mode: str,
    n_params: int,
    strategy: dict[str, Any],
    security: dict[str, Any],
    sizes: Sequence[int] = (),
    model: dict[str, Any] | None = None,
    incentives: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The config an enclave is measured with: everything that decides what it computes —
    the layer sizes of the flat vector, the model it rebuilds to score updates on root or
    valuation data (``None``: it cannot), and the contribution measure with the run seed of
    its permutations (``None``: it scores no contributions)."""
    return {
        "mode": mode,
        "n_params": n_params,
        "strategy": strategy,
        "security": security,
        "sizes": [int(x) for x in sizes],
        "model": model,
        "incentives": incentives,
    }


def expected_measurement(config: dict[str, Any], root: Path | None = None) -> bytes:
    """The measurement of the enclave program under ``root`` run with ``config``."""
    return measure(code_files(root), config)


def platform_identity(seed: int) -> Identity:
    """The simulated platform's key (derived from the run seed: it proves nothing)."""
    return derive_identity(seed, "authority", "enclave-platform")


class EnclaveService:
    """The enclave program (see the module docstring).

    Parameters
    ----------
    config
        :func:`enclave_config`'s dictionary.
    platform_seed
        Seed of the simulated platform key (the run seed).
    """

    def __init__(self, config: dict[str, Any], platform_seed: int) -> None:
        self.config = config
        self.mode = str(config["mode"])
        self.n_params = int(config["n_params"])
        self.measurement = expected_measurement(config)
        self._platform = platform_identity(platform_seed)
        self._box = EnclaveKey()
        self._signer = Identity.generate("authority", "enclave")
        self._strategy_cfg = StrategyConfig(**config["strategy"])
        self._sizes = tuple(int(x) for x in config.get("sizes", ()))
        self._probe: tuple[nn.Module, ParamLayout, Task] | None = None
        spec = config.get("model")
        if spec is not None:
            model = create_model(
                str(spec["name"]),
                tuple(int(x) for x in spec["features"]),
                int(spec["classes"]),
                [int(h) for h in spec["hidden"]],
            )
            self._probe = (model, ParamLayout.of(model), task_from_labels(spec["labels"]))
        self._incentives: dict[str, Any] | None = config.get("incentives")
        if self._incentives is not None and self._probe is None:
            raise SecureAggregationError(
                "the enclave cannot score contributions: it has no model to evaluate them with"
            )
        self._ckks: CkksKeys | None = None
        self._public = b""
        if self.mode == "ckks":
            sec = config["security"]
            self._ckks = CkksKeys(
                poly_modulus_degree=int(sec["ckks_poly_degree"]),
                scale_bits=int(sec["ckks_scale_bits"]),
            )
            self._public = self._ckks.public_context()
        self._data = hashlib.sha256(self._public).digest() if self._public else bytes(32)

    # ---- attestation ----------------------------------------------------------------------
    def attest(self, nonces: Sequence[bytes]) -> list[bytes]:
        return [
            sign_quote(
                self._platform,
                self.measurement,
                self._box.public_key,
                nonce,
                signing_key=self._signer.public_key,
                data=self._data,
            ).encode()
            for nonce in nonces
        ]

    def public_material(self) -> bytes:
        return self._public

    # ---- aggregation ----------------------------------------------------------------------
    def aggregate(
        self,
        round_number: int,
        base: bytes,
        state: bytes,
        payloads: Sequence[bytes],
        n_samples: Sequence[int],
        context: bytes = b"",
    ) -> AggregateReply:
        if self.mode != "enclave":
            raise SecureAggregationError(f"an enclave in {self.mode!r} mode does not aggregate")
        if len(payloads) != len(n_samples):
            raise SecureAggregationError("one sample count per payload is needed")
        global_params = torch.from_numpy(decode_f32(base, self.n_params).copy())
        rows: list[np.ndarray] = []
        accepted: list[int] = []
        rejected: list[tuple[int, str]] = []
        for i, (sealed, n) in enumerate(zip(payloads, n_samples, strict=True)):
            try:
                if n <= 0:
                    raise EnvelopeError("malformed", "no samples")
                rows.append(decode_f32(self._box.open(sealed), self.n_params))
            except EnvelopeError as exc:
                rejected.append((i, exc.reason))
                continue
            accepted.append(i)
        strategy = create_strategy(self._strategy_cfg)
        strategy.load_state_dict(dict(load_tensors(state)) if state else {})
        tensors = dict(load_tensors(context)) if context else {}
        ids = self._device_ids(tensors, len(payloads))
        flagged: tuple[int, ...] = ()
        scored = Scored()
        if accepted:
            updates = torch.from_numpy(np.stack(rows))
            weights = torch.tensor([float(n_samples[i]) for i in accepted], dtype=updates.dtype)
            round_ctx = self._round_context(
                round_number, tensors, ids, accepted, strategy, global_params, updates
            )
            params = strategy.aggregate(global_params, updates, weights, round_ctx)
            flagged = tuple(accepted[i] for i in strategy.flagged)
            if self._incentives is not None:
                scored = self._score(
                    round_number, tensors, ids, accepted, global_params, params, updates, weights
                )
        else:  # nothing usable: the model and the strategy state stay
            params = global_params
        out = params.detach().numpy().astype("<f4")
        transcript = Transcript(
            round=round_number,
            mode=self.mode,
            measurement=self.measurement,
            strategy=self._strategy_cfg.name,
            base=vector_digest(global_params.numpy()),
            inputs=tuple(
                (hashlib.sha256(p).digest(), int(n))
                for p, n in zip(payloads, n_samples, strict=True)
            ),
            accepted=tuple(accepted),
            rejected=tuple(rejected),
            output=vector_digest(out),
            context=context_digest(context),
            flagged=flagged,
            contribution="none" if self._incentives is None else str(self._incentives["method"]),
            scores=scored.scores,
            free_riders=scored.free_riders,
            evaluations=scored.evaluations,
        )
        return AggregateReply(
            params=out.tobytes(),
            state=save_tensors({k: v.contiguous() for k, v in strategy.state_dict().items()}),
            transcript=transcript.encode(),
            signature=transcript.sign(self._signer),
        )

    @staticmethod
    def _device_ids(tensors: dict[str, torch.Tensor], n_inputs: int) -> list[int] | None:
        """The device id of every input, from the round context (``None``: not given)."""
        if "devices" not in tensors:
            return None
        ids = [int(d) for d in tensors["devices"].tolist()]
        if len(ids) != n_inputs:
            raise SecureAggregationError(
                f"the round context names {len(ids)} devices for {n_inputs} inputs"
            )
        return ids

    def _round_context(
        self,
        round_number: int,
        tensors: dict[str, torch.Tensor],
        ids: list[int] | None,
        accepted: list[int],
        strategy: Strategy,
        base: torch.Tensor,
        updates: torch.Tensor,
    ) -> RoundContext:
        """The strategy's view of the round from the host's public context: device ids of
        the accepted inputs, the reference update, and each update's effect on the root loss,
        computed here on the updates nobody else sees."""
        devices = () if ids is None else tuple(ids[i] for i in accepted)
        reference = tensors.get("reference")
        if reference is not None and reference.numel() != self.n_params:
            raise SecureAggregationError("the reference update has the wrong size")
        root_loss = shift = None
        if strategy.needs_root_loss and "root_x" in tensors and self._probe is not None:
            model, layout, task = self._probe
            root_loss = root_loss_increase(
                model, layout, task, base, updates, tensors["root_x"], tensors["root_y"]
            )
        probe_inputs = ("root_x", "shift_high", "shift_groups", "shift_benign")
        given = all(name in tensors for name in probe_inputs)
        if strategy.needs_benign_shift and given and self._probe is not None:
            model, layout, _ = self._probe
            shift = benign_shift(
                model,
                layout,
                base,
                updates,
                tensors["root_x"],
                tensors["root_y"],
                tensors["shift_high"],
                tensors["shift_groups"],
                int(tensors["shift_benign"][0]),
            )
        return RoundContext(
            round=round_number,
            devices=devices,
            reference=reference,
            sizes=self._sizes,
            root_loss=root_loss,
            benign_shift=shift,
        )

    def _score(
        self,
        round_number: int,
        tensors: dict[str, torch.Tensor],
        ids: list[int] | None,
        accepted: list[int],
        base: torch.Tensor,
        params: torch.Tensor,
        updates: torch.Tensor,
        weights: torch.Tensor,
    ) -> Scored:
        """Contribution scores and free riders among the accepted updates of the round's own
        devices (sealed Sybil clones, id ``-1``, are not scored), as the plain simulation
        computes them (:func:`fedledger.fl.contribution_game.round_incentives`): the same
        game on the validators' valuation rows, the same seeded permutations."""
        assert self._incentives is not None and self._probe is not None
        if ids is None:
            raise SecureAggregationError("the round context names no devices to score")
        own = [k for k, i in enumerate(accepted) if ids[i] >= 0]
        if not own:
            return Scored()
        if "valuation_x" not in tensors or "valuation_y" not in tensors:
            raise SecureAggregationError("the round context holds no valuation rows to score on")
        step = tensors.get("step")
        if step is not None and step.numel() != self.n_params:
            raise SecureAggregationError("the round context's last global step has the wrong size")
        model, layout, task = self._probe
        x, y = tensors["valuation_x"], tensors["valuation_y"]

        def quality(p: torch.Tensor) -> float:
            return valuation_quality(model, layout, task, p, x, y)

        seed = int(self._incentives["seed"])
        game = RoundGame.of_round(
            base, updates[own], weights[own], params, quality, seed, round_number
        )
        found = assess_round(str(self._incentives["method"]), game, step)
        return Scored(
            scores=tuple((accepted[own[k]], float(v)) for k, v in enumerate(found.scores)),
            free_riders=tuple(
                (accepted[own[k]], kind) for k, kind in sorted(found.free_riders.items())
            ),
            evaluations=found.evaluations,
        )

    def decrypt_sum(
        self,
        round_number: int,
        summed: bytes,
        length: int,
        inputs: Sequence[tuple[bytes, int]],
    ) -> DecryptReply:
        if self._ckks is None:
            raise SecureAggregationError(f"an enclave in {self.mode!r} mode holds no CKKS key")
        digests = [d for d, _ in inputs]
        if len(set(digests)) < MIN_SUM_INPUTS:
            raise SecureAggregationError(
                f"refusing to decrypt a sum of {len(set(digests))} distinct updates "
                f"(at least {MIN_SUM_INPUTS}): it would reveal a single device's update"
            )
        values = self._ckks.decrypt(summed, length).astype("<f8")
        transcript = Transcript(
            round=round_number,
            mode=self.mode,
            measurement=self.measurement,
            strategy=self._strategy_cfg.name,
            base=hashlib.sha256(summed).digest(),
            inputs=tuple((d, int(n)) for d, n in inputs),
            accepted=tuple(range(len(inputs))),
            rejected=(),
            output=vector_digest(values),
        )
        return DecryptReply(values.tobytes(), transcript.encode(), transcript.sign(self._signer))
