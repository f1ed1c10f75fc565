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

With incentives (:mod:`~fedledger.fl.ledger_rewards`), the validators' votes also carry the
digest of the round's rewards vector; after finalisation one transaction pays it, and one per
caught free rider takes its penalty.

Transactions per round: 1 + gateways + validators (+ 1 payout + 1 per penalty), whatever the
number of devices.

Step 3 and the chain run in the :mod:`~fedledger.fl.network` (a second process by default).
While it checks the envelopes and commits, the validators already derive
and score the model from all of the round's updates; if a gateway refused any envelope they
derive it again from the accepted ones, so what they vote for is the same either way.

In the simulation every device downloads the same blob, so the fidelity check runs once per
round on their behalf; the gateways' copy of the registry is read from the chain at start-up
and updated whenever the authority changes a member's status.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import torch

from fedledger.config import LedgerConfig
from fedledger.errors import ModelFidelityError
from fedledger.fl.engine import Simulation
from fedledger.fl.gate import round_outcome
from fedledger.fl.ledger_envelopes import (
    accepted_updates,
    add_sybils,
    check_finite,
    envelope_lines,
    merge_reasons,
    protect_payloads,
    sign_envelopes,
    trainer_order,
)
from fedledger.fl.ledger_records import LedgerRecords
from fedledger.fl.ledger_rewards import propose_rewards, settle_rewards
from fedledger.fl.ledger_validation import (
    Derived,
    Standing,
    attest,
    cast_ballots,
    derive,
    gate_entry,
    pooled_stats,
    publish,
    round_record,
    score_standing,
    screen_flags,
    split_validation,
)
from fedledger.fl.network import Participants
from fedledger.fl.round_data import RoundResult, secure_summary
from fedledger.fl.secure.base import Submission
from fedledger.fl.validator import NO_REWARDS, Validator
from fedledger.ledger.model_store import ModelStore, decode_tensors, encode_tensors
from fedledger.security.enclave.quote import Quote
from fedledger.security.enclave.transcript import verify_transcript
from fedledger.security.payload import PLAIN_F32

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

    def settle(
        self, r: int, rewards: list[list[int]], penalties: list[list[int]]
    ) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


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
        self.standing: Standing | None = None  # the global model's scores, for the gate

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
        payloads = protect_payloads(sim, r, local.updates, local.order)
        scheme = PLAIN_F32 if sim.secure is None else sim.secure.scheme
        add_sybils(self.inbox, sim, r, local, scheme, self.seed, self.people)
        lap("protect")
        inbox, envelope_rows = sign_envelopes(
            r, local.order, local.weights, payloads, scheme, self.seed, self.people, self.inbox
        )
        self.inbox = {}
        lap("sign")
        self.net.exchange_async(r, inbox, envelope_rows)
        rows = [k for k, payload in enumerate(payloads) if payload is not None]
        row_ids = list(local.order)  # device of each row the validators aggregate
        aggregated = (local.updates, local.weights)
        if sim.secure is None:
            # while the network checks and commits, validators derive from all of the updates
            derived, context = derive(
                self.validators,
                self.store,
                sim,
                local.updates,
                local.weights,
                sim.round_context(r, local.order, local.updates),
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
        reasons = merge_reasons(batches)
        secure: dict[str, Any] | None = None
        if sim.secure is None:
            check_finite(r, accepted, reasons, len(rows))
            if kept != rows or extra:
                updates, weights = accepted_updates(local.updates, local.weights, kept, extra)
                row_ids = [local.order[k] for k in kept] + [-1] * len(extra)
                aggregated = (updates, weights)
                derived, context = derive(
                    self.validators,
                    self.store,
                    sim,
                    updates,
                    weights,
                    sim.round_context(r, row_ids, updates),
                )
                lap("validate")
        else:
            submissions = [
                Submission(local.order[item["row"]], payload, int(item["n_samples"]))
                if item["row"] >= 0 and (payload := payloads[item["row"]]) is not None
                else Submission(-1, bytes.fromhex(item["payload"]), int(item["n_samples"]))
                for item in sorted(accepted, key=trainer_order)
            ]
            protected = sim.secure.speculated(submissions) or sim.secure.aggregate(
                r, sim.global_params, sim.strategy, submissions, round_inputs
            )
            refused: dict[str, int] = {}
            for why in protected.rejected.values():
                refused[why] = refused.get(why, 0) + 1
            check_finite(r, protected.accepted, refused, len(rows))
            secure = {
                **secure_summary(sim.secure.mode, protected),
                "rejected": {str(i): why for i, why in sorted(protected.rejected.items())},
                "evidence": protected.evidence,
            }
            lap("aggregate")
            derived, context = publish(
                self.validators, self.store, sim, protected.params, protected.strategy
            )
            lap("validate")
        quotes = attest(self.validators, sim, self.seed, r)
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
        gate = gate_entry(sim, derived, context, standing, self.cfg.gate_margin)
        lap("validate")
        labels = sim.task.labels()
        # the devices each validator's strategy flagged (the enclave's, with secure aggregation)
        flags = screen_flags(
            sim, derived, row_ids, None if sim.secure is None else protected.flagged
        )
        rewards = propose_rewards(
            sim,
            self.people,
            r,
            base,
            derived[0].params,
            row_ids,
            *aggregated,
            local.devices,
            flags[0],
            None if sim.secure is None else protected,
        )
        ballots = cast_ballots(
            r,
            derived,
            quotes,
            self.model_digest,
            gate,
            context,
            labels,
            flags,
            roots,
            NO_REWARDS if rewards is None else rewards.digest,
        )
        outcome = self.net.vote(r, ballots)
        receipts += outcome["receipts"]
        receipts += settle_rewards(self.net, sim, r, rewards, outcome, ballots, gate, local.devices)
        self.net.seal_async()
        lap("chain")
        finalised = outcome["status"] == "finalised"
        agree = [
            d
            for d, b in zip(derived, ballots, strict=True)
            if finalised and (b["model"], b["accepted"]) == (outcome["model"], outcome["accepted"])
        ]
        record = round_record(
            r, self.config_digest, batches, ballots, derived, context, outcome, receipts
        )
        record["labels"] = labels
        record["gate"] = gate
        if rewards is not None:
            record["rewards"] = rewards.record()
        gated, gate["outcome"] = round_outcome(
            sim.task, record, [d.validator.index for d in agree], finalised
        )
        sim.previous_params = sim.global_params
        if gated:
            # the quorum voted for the base model: it stays, and so does the strategy's state
            self._adopt(sim, bytes.fromhex(outcome["model"]), [])
            pooled = pooled_stats([standing.stats[d.validator.index] for d in agree])
            metrics = sim.task.metrics(pooled, standing.context)
            metrics.update(sim.attack_metrics())
        elif finalised:
            self._adopt(sim, bytes.fromhex(outcome["model"]), agree)
            # pooled over the validators whose vote carried the round (their slices)
            metrics = sim.task.metrics(pooled_stats([d.stats for d in agree]), context)
            metrics.update(sim.attack_metrics())
            if all(d.model == self.model_digest for d in derived):
                # every validator scored the adopted model already: the gate's next baseline
                self.standing = Standing(self.model_digest, context, [d.stats for d in derived])
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
        self.records.append_round(record, envelope_lines(r, batches))
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
        if rewards is not None:
            metrics.update(rewards.metrics())
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

    def _standing(self, sim: Simulation, base: torch.Tensor) -> Standing:
        """Each validator's statistics of the current global model ``base`` (kept from the
        round that adopted it; scored here for the initial model and after a resume)."""
        if self.standing is None or self.standing.model != self.model_digest:
            self.standing = score_standing(self.validators, sim, base, self.model_digest)
        return self.standing

    def _adopt(self, sim: Simulation, model: bytes, agree: list[Derived]) -> None:
        """Make the finalised model global, fetched from the store and checked by digest."""
        params = self.fetch(sim, model)
        if agree:  # the strategy state of a validator that derived the finalised model
            sim.strategy = agree[0].strategy
        sim.global_params = params
        self.model_digest = model
