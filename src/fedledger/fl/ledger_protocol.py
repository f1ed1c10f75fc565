"""One federated round on the ledger: open → train → sign → gateways commit → validators vote.

This is DESIGN.md's "One round, as data" for ``ledger.backend = "embedded" | "rpc"``:

1. The authority opens round ``r`` on chain with the digest of the current global model; the
   contract refuses any digest but the last finalised one. Devices fetch that blob from the
   model store and refuse it unless it hashes to the digest (model fidelity).
2. Devices train (the simulation engine, vectorised) and each signs an envelope over its
   update (Ed25519).
3. Each gateway checks its cluster's envelopes, commits the Merkle root of the accepted ones in
   one transaction, and every device verifies its inclusion proof against that root.
4. Each validator re-aggregates the accepted updates with its own copy of the strategy,
   evaluates the candidate on its own validation split, stores the blob and votes. Its gate
   (:mod:`~fedledger.fl.gate`) votes for the round's base model instead when the candidate's
   validation accuracy falls more than ``ledger.gate_margin`` below the current model's.
5. At a quorum of identical votes the contract finalises the round; otherwise the previous
   model stands. A quorum of gated votes finalises the base model again (a fallback): the
   global model and the strategy's state stay as they were.

Transactions per round: 1 + gateways + validators, whatever the number of devices.

Step 3 and the chain run in the :mod:`~fedledger.fl.network` (a second process by default).
While it checks the envelopes and commits, the validators already derive
and score the model from all of the round's updates; if a gateway refused any envelope they
derive it again from the accepted ones, so what they vote for is the same either way.

In the simulation every device downloads the same blob, so the fidelity check runs once per
round on their behalf; the gateways' copy of the registry is read from the chain at start-up
and updated whenever the authority changes a member's status.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from fedledger.config import LedgerConfig
from fedledger.errors import FedledgerError, ModelFidelityError
from fedledger.fl.engine import LocalUpdates, RoundResult, Simulation, secure_summary
from fedledger.fl.gate import (
    FALLBACK,
    GATE_METRIC,
    gate_decision,
    gate_evidence,
    gate_score,
    round_outcome,
)
from fedledger.fl.ledger_records import LedgerRecords
from fedledger.fl.network import Participants, device_nonce
from fedledger.fl.secure.base import Submission, round_nonce
from fedledger.fl.tasks import EvalStats
from fedledger.fl.validator import (
    NO_QUOTE,
    NO_REWARDS,
    Validator,
    accepted_digest,
    metrics_digest,
)
from fedledger.ledger.model_store import ModelStore, decode_tensors, encode_tensors
from fedledger.security.enclave.quote import Quote
from fedledger.security.enclave.transcript import verify_transcript
from fedledger.security.envelope import seal_envelope
from fedledger.security.identity import derive_identity
from fedledger.security.payload import PLAIN_F32, encode_f32
from fedledger.strategies.base import RoundContext, Strategy

__all__ = ["LedgerProtocol", "NetworkLike", "split_validation"]


class NetworkLike(Protocol):
    """What the protocol needs from the network side (in-process or a child process)."""

    def open_round_async(self, r: int, base: str, config: str) -> None: ...

    def seal_async(self) -> None: ...

    def exchange_async(
        self, r: int, inbox: dict[int, list[bytes]], rows: dict[tuple[bytes, bytes], int]
    ) -> None: ...

    def collect(self) -> list[Any]: ...

    def set_status(self, device: int, active: bool, r: int) -> list[dict[str, Any]]: ...

    def vote(self, r: int, ballots: list[dict[str, Any]]) -> dict[str, Any]: ...

    def close(self) -> None: ...


@dataclass
class _Derived:
    """One validator's candidate: parameters, its strategy copy, model digest and scores."""

    validator: Validator
    params: torch.Tensor
    strategy: Strategy
    model: bytes
    stats: EvalStats


@dataclass
class _Standing:
    """The current global model's evaluation context and each validator's statistics of it
    (what the gate compares a candidate with)."""

    model: bytes
    context: dict[str, float]
    stats: list[EvalStats]


def split_validation(n_rows: int, n_validators: int, seed: int) -> list[np.ndarray]:
    """Each validator's validation split: disjoint, seeded slices of the held-out rows that
    together cover all of them (so pooled statistics equal the whole split's)."""
    order = np.random.default_rng([seed, 0, 2]).permutation(n_rows)
    return [np.sort(part) for part in np.array_split(order, n_validators)]


class LedgerProtocol:
    """Runs rounds of a :class:`~fedledger.fl.engine.Simulation` through the ledger.

    Built by :func:`fedledger.fl.ledger_setup.deploy_ledger`; the simulation's ``run_round``
    delegates here when a ledger is configured.
    """

    def __init__(
        self,
        sim: Simulation,
        network: NetworkLike,
        cfg: LedgerConfig,
        participants: Participants,
        records: LedgerRecords,
        config_digest: bytes,
        model_digest: bytes,
    ) -> None:
        self.net = network
        self.cfg = cfg
        self.people = participants
        self.records = records
        self.store = ModelStore(records.store_dir)
        self.config_digest = config_digest
        self.model_digest = model_digest
        self.seed = sim.train_cfg.seed
        slices = split_validation(len(sim.data.y_test), cfg.validators, sim.train_cfg.seed)
        n_honest = cfg.validators - cfg.byzantine
        self.validators = [
            Validator(
                v,
                sim.eval_data.x_test[torch.from_numpy(rows)],
                sim.eval_data.y_test[torch.from_numpy(rows)],
                None if v < n_honest else cfg.byzantine_mode,
            )
            for v, rows in enumerate(slices)
        ]
        self.inbox: dict[int, list[bytes]] = {}  # extra envelopes for a gateway (tests, attacks)
        self.standing: _Standing | None = None  # the global model's scores, for the gate

    def close(self) -> None:
        """Seal the last block, close the chain's log and stop the network process."""
        self.net.collect()
        self.net.close()

    # ---- authority actions ----------------------------------------------------------------
    def set_device_status(self, device: int, active: bool, round_number: int) -> None:
        """Revoke (or reactivate) a device on chain; gateways see it from the next envelope."""
        self.net.collect()
        self.net.set_status(device, active, round_number)

    # ---- model store ----------------------------------------------------------------------
    def fetch(self, sim: Simulation, digest: bytes) -> torch.Tensor:
        """The flat parameters of the blob ``digest``, refused unless it hashes to it."""
        tensors = decode_tensors(self.store.get(digest.hex()))
        try:
            return sim.layout.flatten(tensors).detach().clone()
        except (KeyError, RuntimeError) as exc:
            raise ModelFidelityError(
                f"model blob {digest.hex()} does not fit the model: {exc}"
            ) from None

    @staticmethod
    def genesis_blob(sim: Simulation) -> bytes:
        return encode_tensors(sim.layout.unflatten(sim.global_params))

    # ---- one round ----------------------------------------------------------------------
    def run_round(self, sim: Simulation, r: int) -> RoundResult:
        timings: dict[str, float] = {}
        t = time.perf_counter()
        start = t

        def lap(name: str) -> None:
            nonlocal t
            now = time.perf_counter()
            timings[name] = timings.get(name, 0.0) + now - t
            t = now

        self.net.open_round_async(r, self.model_digest.hex(), self.config_digest.hex())
        base = self.fetch(sim, self.model_digest)
        if not torch.equal(base, sim.global_params):
            raise ModelFidelityError(
                f"round {r}: the finalised model {self.model_digest.hex()} differs from the "
                f"model in memory"
            )
        lap("fetch")
        sim.begin_secure_round(r)
        lap("protect")
        local = sim.train_devices(r)
        timings["train"] = local.seconds
        t = time.perf_counter()
        payloads = self._protect(sim, r, local.updates, local.order)
        scheme = PLAIN_F32 if sim.secure is None else sim.secure.scheme
        self._sybils(sim, r, local, scheme)
        lap("protect")
        inbox, envelope_rows = self._sign(r, local.order, local.weights, payloads, scheme)
        lap("sign")
        self.net.exchange_async(r, inbox, envelope_rows)
        rows = [k for k, payload in enumerate(payloads) if payload is not None]
        row_ids = list(local.order)  # device of each row the validators aggregate
        if sim.secure is None:
            # while the network checks and commits, validators derive from all of the updates
            derived, context = self._derive(
                sim, local.updates, local.weights, sim.round_context(r, local.order, local.updates)
            )
            lap("validate")
        else:  # the enclave may aggregate them meanwhile, on another core
            round_inputs = sim.round_inputs(r)
            sim.secure.speculate(
                r,
                sim.global_params,
                sim.strategy,
                [
                    Submission(local.order[k], payload, int(local.weights[k]))
                    for k, payload in enumerate(payloads)
                    if payload is not None
                ],
                round_inputs,
            )
        receipts: list[dict[str, Any]] = []
        exchange: dict[str, Any] = {}
        for result in self.net.collect():
            if isinstance(result, list):
                receipts += result
            elif isinstance(result, dict):
                exchange = result
        receipts += exchange["receipts"]
        batches = exchange["batches"]
        lap("network")
        accepted = [item for b in batches for item in b["accepted"]]
        kept = sorted(item["row"] for item in accepted if item["row"] >= 0)
        extra = [item for item in accepted if item["row"] < 0]
        reasons = _merge_reasons(batches)
        secure: dict[str, Any] | None = None
        if sim.secure is None:
            _check_finite(r, accepted, reasons, len(rows))
            if kept != rows or extra:
                updates, weights = self._accepted_updates(local.updates, local.weights, kept, extra)
                row_ids = [local.order[k] for k in kept] + [-1] * len(extra)
                derived, context = self._derive(
                    sim, updates, weights, sim.round_context(r, row_ids, updates)
                )
                lap("validate")
        else:
            submissions = [
                Submission(local.order[item["row"]], payload, int(item["n_samples"]))
                if item["row"] >= 0 and (payload := payloads[item["row"]]) is not None
                else Submission(-1, bytes.fromhex(item["payload"]), int(item["n_samples"]))
                for item in sorted(accepted, key=_trainer_order)
            ]
            protected = sim.secure.speculated(submissions) or sim.secure.aggregate(
                r, sim.global_params, sim.strategy, submissions, round_inputs
            )
            refused: dict[str, int] = {}
            for why in protected.rejected.values():
                refused[why] = refused.get(why, 0) + 1
            _check_finite(r, protected.accepted, refused, len(rows))
            secure = {
                **secure_summary(sim.secure.mode, protected),
                "rejected": {str(i): why for i, why in sorted(protected.rejected.items())},
                "evidence": protected.evidence,
            }
            lap("aggregate")
            derived, context = self._publish(sim, protected.params, protected.strategy)
            lap("validate")
        quotes = self._attest(sim, r)
        if secure is not None and "transcript" in secure["evidence"]:
            # each validator checks the transcript under the key its own quote vouches for
            for q in quotes:
                assert q is not None
                verify_transcript(
                    bytes.fromhex(secure["evidence"]["transcript"]),
                    bytes.fromhex(secure["evidence"]["signature"]),
                    Quote.decode(q).signing_key,
                )
        roots = [bytes.fromhex(b["root"]) for b in batches if b["accepted"]]
        standing = self._standing(sim, base)
        gate = self._gate(sim, derived, context, standing)
        lap("validate")
        labels = sim.task.labels()
        # the devices each validator's strategy flagged (the enclave's, with secure aggregation)
        flags: dict[int, list[int] | None] = {}
        for d in derived:
            if not sim.strategy.screens:
                flags[d.validator.index] = None
            elif sim.secure is not None:
                flags[d.validator.index] = sorted(protected.flagged)
            else:
                flags[d.validator.index] = sorted(
                    row_ids[i] for i in d.strategy.flagged if row_ids[i] >= 0
                )
        ballots = []
        for d, q in zip(derived, quotes, strict=True):
            fallback = gate["validators"][d.validator.index]["decision"] == FALLBACK
            model = d.validator.vote_model(self.model_digest if fallback else d.model)
            evidence = gate_evidence(gate, d.validator.index)
            digest = metrics_digest(
                r,
                d.validator.name,
                model,
                d.stats,
                context,
                labels,
                evidence,
                flags[d.validator.index],
            )
            ballots.append(
                {
                    "validator": d.validator.index,
                    "model": model.hex(),
                    "accepted": d.validator.accepted_for(roots).hex(),
                    "rewards": NO_REWARDS.hex(),
                    "metrics": digest.hex(),
                    "quote": (Quote.decode(q).digest() if q else NO_QUOTE).hex(),
                }
            )
        outcome = self.net.vote(r, ballots)
        receipts += outcome["receipts"]
        self.net.seal_async()
        lap("chain")
        finalised = outcome["status"] == "finalised"
        agree = [
            d
            for d, b in zip(derived, ballots, strict=True)
            if finalised and (b["model"], b["accepted"]) == (outcome["model"], outcome["accepted"])
        ]
        record = self._record(r, batches, ballots, derived, context, outcome, receipts)
        record["labels"] = labels
        record["gate"] = gate
        gated, gate["outcome"] = round_outcome(
            sim.task, record, [d.validator.index for d in agree], finalised
        )
        sim.previous_params = sim.global_params
        if gated:
            # the quorum voted for the base model: it stays, and so does the strategy's state
            self._adopt(sim, bytes.fromhex(outcome["model"]), [])
            pooled = _pooled([standing.stats[d.validator.index] for d in agree])
            metrics = sim.task.metrics(pooled, standing.context)
            metrics.update(sim.attack_metrics())
        elif finalised:
            self._adopt(sim, bytes.fromhex(outcome["model"]), agree)
            # pooled over the validators whose vote carried the round (their slices)
            metrics = sim.task.metrics(_pooled([d.stats for d in agree]), context)
            metrics.update(sim.attack_metrics())
            if all(d.model == self.model_digest for d in derived):
                # every validator scored the adopted model already: the gate's next baseline
                self.standing = _Standing(self.model_digest, context, [d.stats for d in derived])
        else:
            metrics = sim.evaluate()
        carried = agree[0] if agree else derived[0]
        flagged = flags[carried.validator.index]
        if flagged is not None:
            record["screen"] = {"flagged": flagged, "devices": sorted(local.devices)}
        metrics.update(sim.screening(r, local.devices, flagged or []))
        lap("evaluate")
        if secure is not None:
            record["secure"] = secure
            for vote, q in zip(record["votes"], quotes, strict=True):
                vote["quote"] = q.hex() if q else None
        self.records.append_round(record, self._envelope_lines(r, batches))
        lap("records")
        metrics["ledger"] = {
            "finalised": finalised,
            "accepted": len(accepted),
            "rejected": sum(len(b["rejected"]) for b in batches),
            "rejections": reasons,
            "votes": len(agree),
            "validators": len(ballots),
            "gated": gated,
            "transactions": len(receipts),
            "gas": sum(int(x["gas"]) for x in receipts),
        }
        if secure is not None:
            metrics["secure"] = {
                k: v for k, v in secure.items() if k not in ("rejected", "evidence")
            }
        return RoundResult(
            round=r,
            global_params=sim.global_params,
            devices=local.devices,
            metrics=metrics,
            seconds=time.perf_counter() - start,
            timings=timings,
        )

    @staticmethod
    def _protect(
        sim: Simulation, r: int, updates: torch.Tensor, order: list[int]
    ) -> list[bytes | None]:
        """Each device's payload: its plain float32 update, or with a secure-aggregation mode
        its protected update (``None`` for a device that drops out)."""
        matrix = updates.detach().numpy()
        if sim.secure is None:
            return [encode_f32(row) for row in matrix]
        return [sim.secure.protect(r, d, matrix[k]) for k, d in enumerate(order)]

    def _sybils(self, sim: Simulation, r: int, local: LocalUpdates, scheme: str) -> None:
        """The Sybil attack's clones sign envelopes with keys of their own, which nobody
        registered, and send them to their device's gateway (which refuses them)."""
        weight = {d: int(w) for d, w in zip(local.order, local.weights, strict=True)}
        count: dict[int, int] = {}
        for d, row in local.sybils:
            j = count[d] = count.get(d, -1) + 1
            ident = derive_identity(self.seed, "device", f"sybil-{d}-{j}")
            vector = row.detach().numpy()
            payload = None
            if sim.secure is not None and sim.secure.mode == "enclave":
                payload = sim.secure.protect(r, d, vector)
            if payload is None:
                payload = encode_f32(vector)
            nonce = hashlib.sha256(f"fedledger/sybil/{self.seed}/{r}/{d}/{j}".encode()).digest()
            env = seal_envelope(ident, r, weight[d], scheme, payload, nonce[:16])
            self.inbox.setdefault(self.people.gateway_of[d], []).append(env.encode())

    def _sign(
        self,
        r: int,
        order: list[int],
        weights: torch.Tensor,
        payloads: list[bytes | None],
        scheme: str,
    ) -> tuple[dict[int, list[bytes]], dict[tuple[bytes, bytes], int]]:
        """Each device signs its payload; returns what each gateway receives (plus anything in
        :attr:`inbox`) and the row of each device's envelope, by ``(device id, nonce)``."""
        inbox: dict[int, list[bytes]] = {g: [] for g in range(len(self.people.gateways))}
        rows: dict[tuple[bytes, bytes], int] = {}
        for k, d in enumerate(order):
            payload = payloads[k]
            if payload is None:  # the device dropped out: it sends nothing
                continue
            ident = self.people.devices[d]
            nonce = device_nonce(self.seed, r, d)
            env = seal_envelope(ident, r, int(weights[k]), scheme, payload, nonce)
            rows[(ident.id, nonce)] = k
            inbox[self.people.gateway_of[d]].append(env.encode())
        for g, extra in self.inbox.items():
            inbox[g].extend(extra)
        self.inbox = {}
        return inbox, rows

    @staticmethod
    def _accepted_updates(
        updates: torch.Tensor,
        weights: torch.Tensor,
        kept: list[int],
        extra: list[dict[str, Any]],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The accepted rows in the trainer's order, then accepted envelopes from elsewhere."""
        parts = [updates[kept]]
        w = [weights[kept]]
        for item in extra:
            row = np.frombuffer(bytes.fromhex(item["update"]), dtype="<f4").astype(np.float32)
            parts.append(torch.from_numpy(row.copy()).unsqueeze(0))
            w.append(torch.tensor([float(item["n_samples"])], dtype=weights.dtype))
        return torch.cat(parts), torch.cat(w)

    def _derive(
        self,
        sim: Simulation,
        updates: torch.Tensor,
        weights: torch.Tensor,
        round_context: RoundContext,
    ) -> tuple[list[_Derived], dict[str, float]]:
        """Every validator derives, stores and scores the candidate from ``updates`` (with no
        accepted update, the candidate is the current model and the strategy state stays)."""
        candidates = [
            v.derive(
                sim.strategy,
                sim.global_params,
                updates,
                weights,
                sim.layout,
                self.store,
                round_context,
            )
            for v in self.validators
        ]
        # the detection context (e.g. an anomaly threshold) comes from the devices' reports
        sim.layout.load_into(sim.model, candidates[0][0])
        sim.model.eval()
        context = sim.task.context(sim.model, sim.eval_data)
        derived = []
        for v, (params, strategy, model) in zip(self.validators, candidates, strict=True):
            stats = v.evaluate(params, sim.model, sim.layout, sim.task, context)
            derived.append(_Derived(v, params, strategy, model, stats))
        return derived, context

    def _publish(
        self, sim: Simulation, params: torch.Tensor, strategy: Strategy
    ) -> tuple[list[_Derived], dict[str, float]]:
        """With a secure-aggregation mode: every validator takes the protected aggregate (it
        checked the enclave's transcript or recomputed the unmasking), stores, scores it."""
        sim.layout.load_into(sim.model, params)
        sim.model.eval()
        context = sim.task.context(sim.model, sim.eval_data)
        derived = []
        for v in self.validators:
            model = v.publish(params, sim.layout, self.store)
            stats = v.evaluate(params, sim.model, sim.layout, sim.task, context)
            derived.append(_Derived(v, params, strategy, model, stats))
        return derived, context

    def _standing(self, sim: Simulation, base: torch.Tensor) -> _Standing:
        """Each validator's statistics of the current global model ``base`` (kept from the
        round that adopted it; scored here for the initial model and after a resume)."""
        if self.standing is None or self.standing.model != self.model_digest:
            sim.layout.load_into(sim.model, base)
            sim.model.eval()
            context = sim.task.context(sim.model, sim.eval_data)
            stats = [
                v.evaluate(base, sim.model, sim.layout, sim.task, context) for v in self.validators
            ]
            self.standing = _Standing(self.model_digest, context, stats)
        return self.standing

    def _gate(
        self,
        sim: Simulation,
        derived: list[_Derived],
        context: dict[str, float],
        standing: _Standing,
    ) -> dict[str, Any]:
        """The round's ``gate`` entry (its ``outcome`` follows the vote): each validator's
        score of the current model and of the candidate on its split, and its decision."""
        margin = self.cfg.gate_margin
        entries = []
        for d in derived:
            previous = standing.stats[d.validator.index]
            before = gate_score(sim.task, previous, standing.context)
            after = gate_score(sim.task, d.stats, context)
            entries.append(
                {
                    "validator": d.validator.index,
                    "previous": before,
                    "candidate": after,
                    "decision": gate_decision(before, after, margin),
                    "previous_stats": previous.to_json(),
                }
            )
        return {
            "margin": margin,
            "metric": GATE_METRIC,
            "candidate": derived[0].model.hex(),
            "context": standing.context,
            "validators": entries,
        }

    def _attest(self, sim: Simulation, r: int) -> list[bytes | None]:
        """Each validator's verified quote of the enclave for this round (its own nonce), or
        ``None`` where no enclave takes part."""
        if sim.secure is None:
            return [None for _ in self.validators]
        return [sim.secure.attest(round_nonce(self.seed, r, v.name)) for v in self.validators]

    def _adopt(self, sim: Simulation, model: bytes, agree: list[_Derived]) -> None:
        """Make the finalised model global, fetched from the store and checked by digest."""
        params = self.fetch(sim, model)
        if agree:  # the strategy state of a validator that derived the finalised model
            sim.strategy = agree[0].strategy
        sim.global_params = params
        self.model_digest = model

    def _record(
        self,
        r: int,
        batches: list[dict[str, Any]],
        ballots: list[dict[str, Any]],
        derived: list[_Derived],
        context: dict[str, float],
        outcome: dict[str, Any],
        receipts: list[dict[str, Any]],
    ) -> dict[str, Any]:
        finalised = outcome["status"] == "finalised"
        return {
            "round": r,
            "base": outcome["base"],
            "config": self.config_digest.hex(),
            "gateways": [
                {
                    "gateway": b["gateway"],
                    "root": b["root"],
                    "count": len(b["accepted"]),
                    "committed": bool(b["accepted"]),
                    "rejected": b["rejected"],
                }
                for b in batches
            ],
            "accepted": accepted_digest(
                [bytes.fromhex(b["root"]) for b in batches if b["accepted"]]
            ).hex(),
            "votes": [
                {
                    "validator": b["validator"],
                    "model": b["model"],
                    "accepted": b["accepted"],
                    "metrics": b["metrics"],
                    "byzantine": d.validator.byzantine,
                    "stats": d.stats.to_json(),
                }
                for b, d in zip(ballots, derived, strict=True)
            ],
            "context": context,
            "status": outcome["status"],
            "model": outcome["model"] if finalised else None,
            "transactions": [x["tx"] for x in receipts],
            "gas": sum(int(x["gas"]) for x in receipts),
        }

    @staticmethod
    def _envelope_lines(r: int, batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {"round": r, "gateway": b["gateway"], "leaf": i, **env}
            for b in batches
            for i, env in enumerate(b["envelopes"])
        ]


def _pooled(stats: list[EvalStats]) -> EvalStats:
    """Statistics of the union of disjoint validation splits."""
    pooled = stats[0]
    for other in stats[1:]:
        pooled = pooled + other
    return pooled


def _trainer_order(item: dict[str, Any]) -> tuple[bool, int]:
    """Devices' own envelopes in the trainer's row order, then any others (as in plain mode,
    so the aggregate is bit-identical)."""
    return (item["row"] < 0, item["row"])


def _check_finite(r: int, accepted: Sequence[Any], reasons: dict[str, int], submitted: int) -> None:
    if not accepted and reasons.get("non-finite", 0) >= submitted > 0:
        raise FedledgerError(
            f"round {r}: every device's update has NaN/Inf values (training diverged); "
            f"lower train.lr"
        )


def _merge_reasons(batches: list[dict[str, Any]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for b in batches:
        for x in b["rejected"]:
            total[x["reason"]] = total.get(x["reason"], 0) + 1
    return dict(sorted(total.items()))
