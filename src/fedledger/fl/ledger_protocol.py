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
   evaluates the candidate on its own validation split, stores the blob and votes.
5. At a quorum of identical votes the contract finalises the round; otherwise the previous
   model stands.

Transactions per round: 1 + gateways + validators, whatever the number of devices.

In the simulation every device downloads the same blob, so the fidelity check runs once per
round on their behalf; the gateway's copy of the registry is read from the chain at start-up
and updated whenever the authority changes a member's status.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fedledger.config import LedgerConfig
from fedledger.errors import FedledgerError, ModelFidelityError
from fedledger.fl.engine import RoundResult, Simulation
from fedledger.fl.gateway import Gateway, GatewayBatch, KeyStatus
from fedledger.fl.ledger_records import LedgerRecords
from fedledger.fl.validator import NO_QUOTE, NO_REWARDS, Ballot, Validator, accepted_digest
from fedledger.ledger.client import LedgerClient, Receipt
from fedledger.ledger.model_store import ModelStore, decode_tensors, encode_tensors
from fedledger.security.envelope import seal_envelope
from fedledger.security.identity import Identity
from fedledger.security.merkle import verify_inclusion
from fedledger.security.payload import PLAIN_F32, encode_f32

__all__ = ["LedgerProtocol", "Participants"]


@dataclass
class Participants:
    """Everyone taking part, with their keys (derived from the run seed in a simulation).

    Attributes
    ----------
    devices
        One Ed25519 identity per device, in device order.
    gateway_of
        Gateway index of each device.
    gateways, validators
        ``(identity, EVM account)`` per gateway and per validator.
    """

    devices: list[Identity]
    gateway_of: list[int]
    gateways: list[tuple[Identity, Any]]
    validators: list[tuple[Identity, Any]]
    authority: Any


@dataclass
class _Tally:
    receipts: list[Receipt] = field(default_factory=list)

    def add(self, receipt: Receipt) -> Receipt:
        self.receipts.append(receipt)
        return receipt

    @property
    def gas(self) -> int:
        return sum(r.gas_used for r in self.receipts)


def split_validation(n_rows: int, n_validators: int, seed: int) -> list[np.ndarray]:
    """Each validator's validation split: disjoint, seeded slices of the held-out rows that
    together cover all of them (so pooled statistics equal the whole split's)."""
    order = np.random.default_rng([seed, 0, 2]).permutation(n_rows)
    return [np.sort(part) for part in np.array_split(order, n_validators)]


class LedgerProtocol:
    """Runs rounds of a :class:`~fedledger.fl.engine.Simulation` through the ledger.

    Built by :func:`fedledger.assemble.prepare_run`; the simulation's ``run_round`` delegates
    here when a ledger is configured.
    """

    def __init__(
        self,
        sim: Simulation,
        client: LedgerClient,
        cfg: LedgerConfig,
        participants: Participants,
        records: LedgerRecords,
        config_digest: bytes,
        model_digest: bytes,
    ) -> None:
        self.client = client
        self.cfg = cfg
        self.people = participants
        self.records = records
        self.store = ModelStore(records.store_dir)
        self.config_digest = config_digest
        self.model_digest = model_digest
        self.seed = sim.train_cfg.seed
        n_gateways = len(participants.gateways)
        max_payload = int(cfg.max_payload_mb * 2**20)
        self.gateways = [Gateway(g, sim.layout.total, max_payload) for g in range(n_gateways)]
        slices = split_validation(len(sim.data.y_test), cfg.validators, self.seed)
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
        self.registry = {d.id: KeyStatus(d.public_key, True) for d in participants.devices}
        self.inbox: dict[int, list[bytes]] = {}  # extra envelopes for a gateway (tests, attacks)

    def close(self) -> None:
        """Seal the last block and close the chain's log."""
        self.client.backend.seal()
        self.client.backend.close()

    # ---- authority actions ----------------------------------------------------------------
    def set_device_status(self, device: int, active: bool, round_number: int) -> None:
        """Revoke (or reactivate) a device on chain; gateways see it from the next envelope."""
        ident = self.people.devices[device]
        self.client.set_status(ident.id, 1 if active else 2, round=round_number)
        self.registry[ident.id] = KeyStatus(ident.public_key, active)

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
    def _nonce(self, round_number: int, device: int) -> bytes:
        seed = f"fedledger/nonce/{self.seed}/{round_number}/{device}".encode()
        return hashlib.sha256(seed).digest()[:16]

    def run_round(self, sim: Simulation, r: int) -> RoundResult:
        tally = _Tally()
        timings: dict[str, float] = {}
        t = time.perf_counter()
        start = t

        def lap(name: str) -> None:
            nonlocal t
            now = time.perf_counter()
            timings[name] = timings.get(name, 0.0) + now - t
            t = now

        tally.add(self.client.open_round(r, self.model_digest, self.config_digest))
        base = self.fetch(sim, self.model_digest)
        if not torch.equal(base, sim.global_params):
            raise ModelFidelityError(
                f"round {r}: the finalised model {self.model_digest.hex()} differs from the "
                f"model in memory"
            )
        lap("chain")
        local = sim.train_devices(r)
        timings["train"] = local.seconds
        t = time.perf_counter()

        inbox: dict[int, list[bytes]] = {g: [] for g in range(len(self.gateways))}
        updates = local.updates.detach().contiguous().numpy()
        for k, d in enumerate(local.order):
            env = seal_envelope(
                self.people.devices[d],
                r,
                int(local.weights[k]),
                PLAIN_F32,
                encode_f32(updates[k]),
                self._nonce(r, d),
            )
            inbox[self.people.gateway_of[d]].append(env.encode())
        for g, extra in self.inbox.items():
            inbox[g].extend(extra)
        self.inbox = {}
        lap("sign")
        batches = [gw.collect(r, inbox[gw.index], self.registry) for gw in self.gateways]
        lap("gateway")
        committed = [b for b in batches if b.accepted]
        for b in committed:
            tally.add(
                self.client.commit(r, self.people.gateways[b.gateway][1], b.root, len(b.accepted))
            )
        lap("chain")
        self._check_inclusion(r, committed)
        roots = [b.root for b in committed]
        ballots, context = self._validate(sim, r, committed, local.order, roots)
        lap("validate")
        for ballot in ballots:
            tally.add(
                self.client.vote(
                    r,
                    self.people.validators[ballot.validator][1],
                    ballot.model,
                    ballot.accepted,
                    NO_REWARDS,
                    ballot.metrics,
                    NO_QUOTE,
                )
            )
        info = self.client.round_info(r)
        self.client.backend.seal()
        lap("chain")
        finalised = info.status == "finalised"
        if finalised:
            self._adopt(sim, info.model, ballots)
            pooled = ballots[0].stats
            for ballot in ballots[1:]:
                pooled = pooled + ballot.stats
            metrics = sim.task.metrics(pooled, context)
        else:
            metrics = sim.evaluate()
        lap("evaluate")
        record = self._record(r, batches, ballots, context, info, tally, finalised)
        self.records.append_round(record, self._envelope_lines(r, committed))
        lap("records")
        metrics["ledger"] = {
            "finalised": finalised,
            "accepted": sum(len(b.accepted) for b in batches),
            "rejected": sum(len(b.rejected) for b in batches),
            "rejections": _merge_reasons(batches),
            "votes": sum(
                1
                for b in ballots
                if finalised and (b.model, b.accepted) == (info.model, info.accepted)
            ),
            "validators": len(ballots),
            "transactions": len(tally.receipts),
            "gas": tally.gas,
        }
        return RoundResult(
            round=r,
            global_params=sim.global_params,
            devices=local.devices,
            metrics=metrics,
            seconds=time.perf_counter() - start,
            timings=timings,
        )

    def _check_inclusion(self, r: int, committed: list[GatewayBatch]) -> None:
        """Every device whose envelope was accepted verifies its Merkle inclusion proof."""
        for b in committed:
            assert b.tree is not None
            n = len(b.accepted)
            for i, env in enumerate(b.accepted):
                if not verify_inclusion(env.digest(), i, n, b.tree.proof(i), b.root):
                    raise FedledgerError(
                        f"round {r}: device {env.header.device_id.hex()} cannot prove its "
                        f"envelope is in gateway-{b.gateway}'s committed root"
                    )

    def _validate(
        self,
        sim: Simulation,
        r: int,
        committed: list[GatewayBatch],
        order: list[int],
        roots: list[bytes],
    ) -> tuple[list[Ballot], dict[str, float]]:
        """Every validator derives, stores and scores the candidate."""
        by_device: dict[bytes, tuple[np.ndarray, int]] = {}
        for b in committed:
            for env, update in zip(b.accepted, b.updates, strict=True):
                by_device[env.header.device_id] = (update, env.header.n_samples)
        # accepted updates in the trainer's order, so aggregation matches backend = "none"
        rows = [
            by_device[self.people.devices[d].id]
            for d in order
            if self.people.devices[d].id in by_device
        ]
        if not rows:
            raise FedledgerError(f"round {r}: no envelope was accepted by any gateway")
        updates = torch.from_numpy(np.stack([u for u, _ in rows]))
        weights = torch.tensor([n for _, n in rows], dtype=updates.dtype)
        derived = [
            v.derive(
                r, sim.strategy, sim.global_params, updates, weights, roots, sim.layout, self.store
            )
            for v in self.validators
        ]
        # the detection context (e.g. an anomaly threshold) comes from the devices' reports
        sim.layout.load_into(sim.model, derived[0][0])
        sim.model.eval()
        context = sim.task.context(sim.model, sim.eval_data)
        ballots: list[Ballot] = []
        for v, (params, strategy, model, accepted) in zip(self.validators, derived, strict=True):
            stats, metrics = v.evaluate(r, model, params, sim.model, sim.layout, sim.task, context)
            ballots.append(
                Ballot(v.index, params, strategy, model, accepted, metrics, stats, v.byzantine)
            )
        return ballots, context

    def _adopt(self, sim: Simulation, model: bytes, ballots: list[Ballot]) -> None:
        """Make the finalised model global, fetched from the store and checked by digest."""
        params = self.fetch(sim, model)
        agreeing = [b for b in ballots if b.model == model]
        if agreeing:  # the strategy state of a validator that derived the finalised model
            sim.strategy = agreeing[0].strategy
        sim.global_params = params
        self.model_digest = model

    def _record(
        self,
        r: int,
        batches: list[GatewayBatch],
        ballots: list[Ballot],
        context: dict[str, float],
        info: Any,
        tally: _Tally,
        finalised: bool,
    ) -> dict[str, Any]:
        return {
            "round": r,
            "base": info.base.hex(),
            "config": self.config_digest.hex(),
            "gateways": [
                {
                    "gateway": b.gateway,
                    "root": b.root.hex(),
                    "count": len(b.accepted),
                    "committed": bool(b.accepted),
                    "rejected": [
                        {"device": x.device, "reason": x.reason, "detail": x.detail}
                        for x in b.rejected
                    ],
                }
                for b in batches
            ],
            "accepted": accepted_digest([b.root for b in batches if b.accepted]).hex(),
            "votes": [
                {
                    "validator": b.validator,
                    "model": b.model.hex(),
                    "accepted": b.accepted.hex(),
                    "metrics": b.metrics.hex(),
                    "byzantine": b.byzantine,
                    "stats": b.stats.to_json(),
                }
                for b in ballots
            ],
            "context": context,
            "status": info.status,
            "model": info.model.hex() if finalised else None,
            "transactions": [rc.tx_hash for rc in tally.receipts],
            "gas": tally.gas,
        }

    def _envelope_lines(self, r: int, committed: list[GatewayBatch]) -> list[dict[str, Any]]:
        return [
            {
                "round": r,
                "gateway": b.gateway,
                "leaf": i,
                "header": env.header.to_json(),
                "signature": env.signature.hex(),
            }
            for b in committed
            for i, env in enumerate(b.accepted)
        ]


def _merge_reasons(batches: list[GatewayBatch]) -> dict[str, int]:
    total: dict[str, int] = {}
    for b in batches:
        for reason, n in b.reasons().items():
            total[reason] = total.get(reason, 0) + n
    return dict(sorted(total.items()))
