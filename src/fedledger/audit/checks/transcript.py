"""Checks of an enclave's signed transcript of a round (for :mod:`.secure`).

A transcript that verifies under the signing key a verified quote vouches for must name the
round, the registered measurement, the run's mode and strategy, and list exactly the committed
envelopes as its inputs; with ``enclave`` it must also have started from the round's base model
and released its finalised model (in a round the validator gate sent back to the base model:
the candidate the gate refused), flag the devices the round record flags, and score the
contributions and free riders the round's rewards entry records (with incentives, the enclave
scores the updates it alone opens: its signature is what anchors them).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch

from fedledger.audit.checks.common import brief
from fedledger.audit.report import Check
from fedledger.errors import AttestationError
from fedledger.ledger.model_store import ModelStore, decode_tensors
from fedledger.security.enclave.quote import Quote
from fedledger.security.enclave.transcript import Transcript, vector_digest, verify_transcript

__all__ = [
    "EnclaveFacts",
    "Inputs",
    "RunFacts",
    "check_enclave_output",
    "check_flagged",
    "check_scores",
    "check_transcript",
    "model_digest",
]

Inputs = list[tuple[bytes, int]]
"""A round's inputs: (payload sha256, sample count) of each accepted envelope."""


@dataclass(frozen=True)
class EnclaveFacts:
    """What the run's deployment says of its enclave, and whether the chain registers it."""

    measurement: bytes
    platform_key: bytes
    registered: bool

    def accepts(self, measurement: bytes) -> bool:
        return self.registered and measurement == self.measurement


@dataclass(frozen=True)
class RunFacts:
    """Run-wide facts every round's checks need."""

    mode: str
    seed: int
    strategy: str
    enclave: EnclaveFacts | None
    store: ModelStore
    senders: dict[int, dict[bytes, int]]


def check_transcript(
    r: int,
    info: dict[str, Any],
    secure: dict[str, Any],
    inputs: Inputs,
    signer: Quote,
    run: RunFacts,
    digests: dict[bytes, bytes],
    candidate: bytes | None,
    c: Check,
) -> Transcript | None:
    """The round's transcript, signed by the attested enclave, binds the committed envelopes
    to what was released (``candidate``: the candidate the round's gate entry records).
    Returns it once its signature verifies."""
    assert run.enclave is not None
    evidence = secure["evidence"]
    c.checked += 1
    try:
        t = verify_transcript(
            bytes.fromhex(evidence["transcript"]),
            bytes.fromhex(evidence["signature"]),
            signer.signing_key,
        )
    except AttestationError as exc:
        c.fail(f"round {r}: the enclave's transcript: {exc}")
        return None
    where = f"round {r}: the enclave's transcript"
    if t.round != r:
        c.fail(f"{where} is of round {t.round}")
    if t.measurement != run.enclave.measurement:
        c.fail(
            f"{where} is of measurement {brief(t.measurement)}, not the registered "
            f"{brief(run.enclave.measurement)}"
        )
    if t.mode != run.mode:
        c.fail(f"{where} is of mode {t.mode!r}, the run's is {run.mode!r}")
    if t.strategy != run.strategy:
        c.fail(f"{where} ran strategy {t.strategy!r}, config.toml says {run.strategy!r}")
    got, committed = Counter(t.inputs), Counter(inputs)
    if run.mode == "enclave":
        check_enclave_output(r, t, info, secure, got, committed, run, digests, candidate, c)
        return t
    # ckks: the inputs are the well-formed envelopes; malformed ones are rejected before
    extra = got - committed
    if extra:
        c.fail(f"{where}: {sum(extra.values())} input(s) are not committed envelopes of round {r}")
    if len(t.inputs) != int(secure["aggregated"]):
        c.fail(f"{where} sums {len(t.inputs)} inputs, the secure entry says {secure['aggregated']}")
    return t


def check_flagged(r: int, t: Transcript, rec: dict[str, Any], run: RunFacts, c: Check) -> None:
    """The devices whose inputs the enclave's transcript flags are the round record's (and so
    the votes' metrics digests') flagged devices."""
    senders = run.senders.get(r, {})
    flagged = sorted({senders.get(t.inputs[i][0], -1) for i in t.flagged if i < len(t.inputs)})
    screen = rec.get("screen")
    recorded = [] if screen is None else sorted(int(d) for d in screen["flagged"])
    if flagged != recorded:
        c.fail(
            f"round {r}: the enclave's transcript flags devices {flagged}, ledger/rounds.jsonl "
            f"says {recorded}"
        )


def check_scores(r: int, t: Transcript, rec: dict[str, Any], run: RunFacts, c: Check) -> None:
    """The contribution scores and free riders of the enclave's transcript, by device, are
    the ones the round's ``rewards`` entry settled from (scores as rounded there)."""
    rewards = rec.get("rewards")
    where = f"round {r}: the enclave's transcript"
    if not isinstance(rewards, dict):
        if t.contribution != "none" or t.scores:
            c.fail(f"{where} scores contributions, ledger/rounds.jsonl records no rewards")
        return
    if t.contribution != rewards.get("method"):
        c.fail(
            f"{where} scores with {t.contribution!r}, ledger/rounds.jsonl's rewards say "
            f"{rewards.get('method')!r}"
        )
    senders = run.senders.get(r, {})

    def device(i: int) -> str:
        return str(senders.get(t.inputs[i][0], -1)) if 0 <= i < len(t.inputs) else "?"

    scores = {device(i): round(v, 9) for i, v in t.scores}
    if scores != rewards.get("scores"):
        c.fail(f"{where}: its contribution scores are not those ledger/rounds.jsonl rewarded")
    riders = {device(i): kind for i, kind in t.free_riders}
    if riders != rewards.get("free_riders"):
        c.fail(
            f"{where} finds free riders {riders!r}, ledger/rounds.jsonl's rewards say "
            f"{rewards.get('free_riders')!r}"
        )


def check_enclave_output(
    r: int,
    t: Transcript,
    info: dict[str, Any],
    secure: dict[str, Any],
    got: Counter[tuple[bytes, int]],
    committed: Counter[tuple[bytes, int]],
    run: RunFacts,
    digests: dict[bytes, bytes],
    candidate: bytes | None,
    c: Check,
) -> None:
    """``enclave``: the transcript lists every committed envelope, its accepted and rejected
    inputs are the record's, it started from the round's base and released its model, or, in
    a round the gate sent back to the base model, the candidate the gate refused (whether the
    gate decided right is the ``gate`` check's)."""
    where = f"round {r}: the enclave's transcript"
    if got != committed:
        c.fail(
            f"{where}: its inputs are not the committed envelopes of round {r} "
            f"({sum((committed - got).values())} envelope(s) missing, "
            f"{sum((got - committed).values())} input(s) not committed)"
        )
    rejected = {str(i): why for i, why in t.rejected}
    if int(secure["aggregated"]) != len(t.accepted) or secure["rejected"] != rejected:
        c.fail(
            f"{where} accepted {len(t.accepted)} and rejected {rejected!r}; ledger/rounds.jsonl "
            f"says {secure['aggregated']} and {secure['rejected']!r}"
        )
    if t.base != model_digest(run.store, info["base"], digests):
        c.fail(f"{where} did not start from the round's base model {brief(info['base'])}")
    if (
        info["status"] == "finalised"
        and candidate is not None
        and candidate != info["base"]
        and info["model"] == info["base"]
    ):
        if t.output != model_digest(run.store, candidate, digests):
            c.fail(f"{where}: its output is not the candidate {brief(candidate)} the gate refused")
        c.notes.append(
            f"round {r}: the validators' gate refused the enclave's output; the base model stood"
        )
    elif info["status"] == "finalised":
        if t.output != model_digest(run.store, info["model"], digests):
            c.fail(f"{where}: its output is not the finalised model {brief(info['model'])}")
    else:
        c.notes.append(f"round {r}: not finalised; the enclave's output became no model")


def model_digest(store: ModelStore, digest: bytes, cache: dict[bytes, bytes]) -> bytes:
    """:func:`vector_digest` of a stored model's float32 parameters, concatenated in the
    order the blob records (the flat vector's order, which the enclave aggregates in)."""
    if digest not in cache:
        params = decode_tensors(store.get(digest.hex()))
        flat = torch.cat([p.reshape(-1).to(torch.float32) for p in params.values()])
        cache[digest] = vector_digest(flat.numpy())
    return cache[digest]
