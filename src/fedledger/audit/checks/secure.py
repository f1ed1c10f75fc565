"""Checks of secure aggregation: the enclave's attestation quotes and its signed transcripts.

Nobody outside the enclave sees the individual updates of a protected round, so its result is
checkable only through what the enclave signed and what the chain anchors:

- the enclave measurement in ``deployment.json`` is registered on chain;
- every vote carries a quote (``ledger/rounds.jsonl``) signed by the platform key, for the
  registered measurement and for the validator's own nonce, that hashes to the quote digest
  anchored with the vote on chain (without an enclave, that digest is 32 zero bytes);
- every round's transcript verifies under the signing key a verified quote vouches for, names
  the round and the measurement, lists exactly the committed envelopes as its inputs, and
  (``enclave``) started from the round's base model and released its finalised model (in a
  round the validator gate sent back to the base model: the candidate the gate refused), and
  its contribution scores and free riders are those the round's rewards were settled from;
- the round record's ``secure`` summary agrees with its evidence.

The shipped enclave is simulated (a separate process with a software platform key); the
check says so in its notes, whatever ``deployment.json`` claims.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedledger.audit.checks.common import (
    ChainView,
    brief,
    guarded,
    members_of,
    round_records,
    validator_names,
)
from fedledger.audit.checks.transcript import (
    EnclaveFacts,
    Inputs,
    RunFacts,
    check_flagged,
    check_scores,
    check_transcript,
)
from fedledger.audit.report import Check
from fedledger.config import load_config
from fedledger.errors import AttestationError, EnvelopeError, FedledgerError
from fedledger.fl.enclave.service import platform_identity
from fedledger.fl.ledger_records import LedgerRecords
from fedledger.fl.ledger_setup import ENCLAVE_LABEL
from fedledger.fl.secure.base import round_nonce
from fedledger.fl.validator import NO_QUOTE
from fedledger.ledger.model_store import ModelStore
from fedledger.security.enclave.quote import Quote, verify_quote
from fedledger.security.envelope import EnvelopeHeader

__all__ = ["ENCLAVE_MODES", "check_secure"]

ENCLAVE_MODES = ("enclave", "ckks")
"""Modes whose key holder is an attested enclave."""

_SIMULATED = "process"
"""The ``backend`` of the shipped, simulated enclave in ``deployment.json``."""

_SUMMARY = frozenset(("mode", "aggregated", "refused", "rejected", "evidence"))
"""Keys of a round's ``secure`` entry besides the small numbers copied from its evidence."""


def check_secure(
    run_dir: Path,
    records: LedgerRecords,
    chain: ChainView,
    measurement_ok: Callable[[bytes], bool],
) -> Check:
    """Quotes, transcripts and secure summaries of every round (see the module docstring).

    Parameters
    ----------
    run_dir
        The run folder.
    records
        Its ledger records.
    chain
        The replayed chain.
    measurement_ok
        Whether the chain's registry accepts an enclave measurement
        (:meth:`~fedledger.ledger.reader.LedgerReader.measurement_ok`).
    """

    def body(c: Check) -> None:
        config = load_config(run_dir / "config.toml")
        deployment = records.deployment()
        mode = config.security.secure_aggregation
        security = deployment.get("security")
        if security is None:
            c.notes.append("deployment.json has no security entry (a run without the setting)")
            recorded_mode: Any = "none"
        elif isinstance(security, dict):
            recorded_mode = security.get("secure_aggregation")
        else:
            raise ValueError("the security entry of ledger/deployment.json is not an object")
        if recorded_mode != mode:
            c.fail(
                f"deployment.json: secure_aggregation is {recorded_mode!r}, config.toml (whose "
                f"digest every round was opened with) says {mode!r}"
            )
        if mode == "none":
            c.notes.append("no secure aggregation")
        else:
            c.notes.append(f"mode {mode}")
        enclave = None
        if mode in ENCLAVE_MODES:
            enclave = _enclave(security, config.train.seed, measurement_ok, c)
        elif isinstance(security, dict) and security.get("enclave") is not None:
            c.fail(f"deployment.json: an enclave entry, but {mode!r} runs no enclave")
        run = RunFacts(
            mode,
            config.train.seed,
            config.strategy.name,
            enclave,
            ModelStore(records.store_dir),
            _senders(run_dir, records, deployment),
        )
        recorded = round_records(records, Check("", ""))  # the rounds check names bad lines
        names = validator_names(deployment)
        inputs = _inputs(records)
        digests: dict[bytes, bytes] = {}
        for r, info in sorted(chain.rounds.items()):
            rec = recorded.get(r)
            if rec is None:
                c.fail(f"round {r}: not in ledger/rounds.jsonl, its attestation is unchecked")
                continue
            try:
                _check_round(r, info, rec, chain, names, inputs.get(r, []), run, digests, c)
            except AttestationError as exc:
                c.fail(f"round {r}: {exc}")
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                c.fail(
                    f"round {r}: ledger/rounds.jsonl's record is unreadable or incomplete "
                    f"({type(exc).__name__}: {exc})"
                )
            except FedledgerError as exc:
                c.fail(f"round {r}: {exc}")

    return guarded(
        Check(
            "secure",
            "secure aggregation: quotes attest the registered enclave for each vote, "
            "transcripts bind the committed envelopes to the finalised model",
        ),
        body,
    )


def _enclave(
    security: Any, seed: int, measurement_ok: Callable[[bytes], bool], c: Check
) -> EnclaveFacts | None:
    """The deployment's enclave entry, labelled honestly, with its registration on chain."""
    entry = security.get("enclave") if isinstance(security, dict) else None
    if not isinstance(entry, dict):
        c.fail("deployment.json: no enclave entry (measurement, platform key) to verify quotes")
        return None
    measurement = bytes.fromhex(entry["measurement"])
    platform_key = bytes.fromhex(entry["platform_key"])
    backend, label = entry.get("backend"), entry.get("label")
    seeded = platform_key == platform_identity(seed).public_key
    if backend == _SIMULATED or seeded:
        c.notes.append(f"enclave: {ENCLAVE_LABEL}")
        if label != ENCLAVE_LABEL:
            c.fail(
                f"deployment.json: the enclave is labelled {label!r}, but it is the simulated "
                f"one ({ENCLAVE_LABEL})"
            )
        if backend != _SIMULATED:
            c.fail(
                f"deployment.json: enclave backend {backend!r}, but its platform key is the "
                f"simulated one derived from the run seed"
            )
    else:
        c.notes.append(f"enclave: backend {backend!r}, labelled {label!r}")
        c.fail(
            f"deployment.json: enclave backend {backend!r} is not one this audit can verify "
            f"(the shipped backend is the simulated {_SIMULATED!r})"
        )
    registered = measurement_ok(measurement)
    if registered:
        c.notes.append(f"enclave measurement {measurement.hex()} is registered on chain")
    else:
        c.fail(
            f"deployment.json: enclave measurement {measurement.hex()} is not registered on chain"
        )
    return EnclaveFacts(measurement, platform_key, registered)


def _inputs(records: LedgerRecords) -> dict[int, Inputs]:
    """(payload digest, sample count) of every accepted envelope, by round; unreadable lines
    are left to the envelopes check, which names them."""
    out: dict[int, Inputs] = {}
    for _, line in records.envelopes():
        try:
            if line is None:
                continue
            header = EnvelopeHeader.from_json(line["header"])
            r = line["round"]
        except (KeyError, TypeError, ValueError, EnvelopeError):
            continue
        if isinstance(r, int):
            out.setdefault(r, []).append((header.payload_digest, header.n_samples))
    return out


def _senders(
    run_dir: Path, records: LedgerRecords, deployment: dict[str, Any]
) -> dict[int, dict[bytes, int]]:
    """Round → payload digest → the run's index of the device that signed the envelope (by
    its registered name's place in ``devices.json``)."""
    try:
        listed = json.loads((run_dir / "devices.json").read_text())["devices"]
        index = {str(d["device"]): i for i, d in enumerate(listed)}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    member = {
        bytes.fromhex(m["id"]): index[str(m["name"])]
        for m in members_of(deployment)
        if m.get("role") == "device" and str(m.get("name")) in index
    }
    out: dict[int, dict[bytes, int]] = {}
    for _, line in records.envelopes():
        try:
            if line is None:
                continue
            header = EnvelopeHeader.from_json(line["header"])
            r = int(line["round"])
        except (KeyError, TypeError, ValueError, EnvelopeError):
            continue
        out.setdefault(r, {})[header.payload_digest] = member.get(header.device_id, -1)
    return out


def _check_round(
    r: int,
    info: dict[str, Any],
    rec: dict[str, Any],
    chain: ChainView,
    names: dict[bytes, str],
    inputs: Inputs,
    run: RunFacts,
    digests: dict[bytes, bytes],
    c: Check,
) -> None:
    votes = {f"validator-{v['validator']}": v for v in rec["votes"]}
    on_chain = [(names.get(vid, brief(vid)), quote) for vid, quote in chain.quotes.get(r, [])]
    secure = rec.get("secure")
    if run.mode == "none":
        if secure is not None:
            c.fail(f"round {r}: ledger/rounds.jsonl records secure aggregation, the run has none")
        _check_no_quotes(r, votes, on_chain, run.mode, c)
        return
    if not isinstance(secure, dict):
        c.fail(f"round {r}: ledger/rounds.jsonl records no secure aggregation ({run.mode} ran)")
        return
    if run.mode not in ENCLAVE_MODES:
        _check_no_quotes(r, votes, on_chain, run.mode, c)
        verified: list[Quote] = []
    elif run.enclave is None:
        return  # no enclave entry in deployment.json: reported once
    else:
        verified = _check_quotes(r, votes, on_chain, run, c)
    _check_summary(r, secure, inputs, run.mode, c)
    evidence = secure["evidence"]
    if "transcript" in evidence:
        if run.enclave is None:
            c.fail(f"round {r}: an enclave transcript, but {run.mode} runs no enclave")
        elif not verified:
            c.fail(f"round {r}: no verified quote vouches for a key to check the transcript with")
        else:
            gate = rec.get("gate")
            candidate = bytes.fromhex(gate["candidate"]) if isinstance(gate, dict) else None
            t = check_transcript(r, info, secure, inputs, verified[0], run, digests, candidate, c)
            if t is not None and run.mode == "enclave":
                check_flagged(r, t, rec, run, c)
                check_scores(r, t, rec, run, c)
    elif run.mode == "enclave" or (run.mode == "ckks" and secure["aggregated"] > 0):
        c.fail(
            f"round {r}: no enclave transcript in ledger/rounds.jsonl: the aggregate is unproven"
        )


def _check_no_quotes(
    r: int, votes: dict[str, Any], on_chain: list[tuple[str, bytes]], mode: str, c: Check
) -> None:
    """Without an enclave, votes anchor the zero quote digest and record no quote."""
    for name, digest in on_chain:
        c.checked += 1
        vote = votes.get(name) or {}
        if digest != NO_QUOTE:
            c.fail(
                f"round {r}: {name}'s vote anchors quote digest {brief(digest)}, but "
                f"{mode!r} runs no enclave to attest"
            )
        if vote.get("quote") is not None:
            c.fail(f"round {r}: {name}'s vote records a quote, but {mode!r} runs no enclave")


def _check_quotes(
    r: int, votes: dict[str, Any], on_chain: list[tuple[str, bytes]], run: RunFacts, c: Check
) -> list[Quote]:
    """Each vote's quote, as its validator verified it and as anchored; the verified ones in
    chain order."""
    assert run.enclave is not None
    verified = []
    for name, digest in on_chain:
        c.checked += 1
        vote = votes.get(name)
        raw = None if vote is None else vote.get("quote")
        if not isinstance(raw, str):
            c.fail(f"round {r}: {name}'s vote has no quote in ledger/rounds.jsonl")
            continue
        try:
            quote = Quote.decode(bytes.fromhex(raw))
        except ValueError as exc:  # AttestationError too
            c.fail(f"round {r}: {name}'s quote does not decode ({exc})")
            continue
        ok = True
        try:
            verify_quote(
                quote,
                platform_key=run.enclave.platform_key,
                measurement_ok=run.enclave.accepts,
                nonce=round_nonce(run.seed, r, name),
            )
        except AttestationError as exc:
            c.fail(f"round {r}: {name}'s quote: {exc}")
            ok = False
        if run.mode == "enclave" and quote.data != bytes(32):
            c.fail(f"round {r}: {name}'s quote vouches for public material an enclave never serves")
            ok = False
        if quote.digest() != digest:
            c.fail(
                f"round {r}: {name}'s quote hashes to {brief(quote.digest())}, its vote on chain "
                f"anchors {brief(digest)}"
            )
            ok = False
        if ok:
            verified.append(quote)
    return verified


def _check_summary(r: int, secure: dict[str, Any], inputs: Inputs, mode: str, c: Check) -> None:
    """The round's secure entry accounts for every accepted envelope and matches its evidence."""
    where = f"round {r}: ledger/rounds.jsonl's secure entry"
    if secure["mode"] != mode:
        c.fail(f"{where} is of mode {secure['mode']!r}, the run's is {mode!r}")
    rejected: dict[str, str] = secure["rejected"]
    aggregated = int(secure["aggregated"])
    if aggregated + len(rejected) != len(inputs):
        c.fail(
            f"{where} has {aggregated} aggregated and {len(rejected)} rejected inputs, but the "
            f"gateways accepted {len(inputs)} envelopes"
        )
    counts = dict(Counter(str(why) for why in rejected.values()))
    if secure["refused"] != counts:
        c.fail(f"{where}: refused {secure['refused']!r} does not count its rejections {counts!r}")
    evidence = secure["evidence"]
    small = {k: v for k, v in evidence.items() if isinstance(v, int)}
    copied = {k: v for k, v in secure.items() if k not in _SUMMARY}
    if copied != small:
        c.fail(f"{where}: {copied!r} differs from its evidence {small!r}")
