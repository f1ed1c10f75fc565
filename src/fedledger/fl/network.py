"""The network side of a round: the gateways and the chain.

In a deployment these run on other machines than the validators: each gateway is an edge box
and the chain is a set of nodes. The simulation keeps them together in :class:`Network`, which
:class:`~fedledger.fl.network_process.NetworkProcess` can run in a second OS process (the
default), so that envelope verification and the EVM work on the second core while the
validators re-derive the round's model on the first.

Everything :class:`Network` takes and returns is plain JSON-ready data (hex strings, ints,
lists) plus encoded envelopes, so crossing the process boundary needs no pickle.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedledger.errors import CheckpointError, FedledgerError, LedgerError
from fedledger.fl.gateway import Gateway, KeyStatus
from fedledger.fl.ledger_records import LedgerRecords
from fedledger.ledger.accounts import derive_account
from fedledger.ledger.backends.base import ChainBackend, Receipt
from fedledger.ledger.backends.embedded import EmbeddedChain
from fedledger.ledger.backends.rpc import RpcChain
from fedledger.ledger.client import LedgerClient
from fedledger.ledger.records import Member
from fedledger.security.identity import Identity, derive_identity
from fedledger.security.merkle import verify_inclusion
from fedledger.security.payload import PLAIN_F32

__all__ = [
    "MAX_AUTO_GATEWAYS",
    "LocalNetwork",
    "Network",
    "Participants",
    "device_nonce",
    "make_participants",
]

MAX_AUTO_GATEWAYS = 8


@dataclass
class Participants:
    """Everyone taking part, with their keys (derived from the run seed in a simulation).

    Attributes
    ----------
    devices
        One Ed25519 identity per device, in device order.
    clusters
        Cluster number of each device.
    gateway_of
        Gateway index of each device.
    gateways, validators
        ``(identity, EVM account)`` per gateway and per validator.
    authority
        The authority's EVM account.
    """

    devices: list[Identity]
    clusters: list[int]
    gateway_of: list[int]
    gateways: list[tuple[Identity, Any]]
    validators: list[tuple[Identity, Any]]
    authority: Any

    def members(self) -> tuple[list[Member], list[dict[str, Any]]]:
        """The on-chain registrations, and the same as ``deployment.json`` lists them."""
        on_chain: list[Member] = []
        listed: list[dict[str, Any]] = []
        for d, ident in enumerate(self.devices):
            on_chain.append(Member(ident.id, "device", ident.public_key, self.clusters[d]))
            listed.append(
                {
                    "role": "device",
                    "name": ident.name,
                    "index": d,
                    "id": ident.id.hex(),
                    "key": ident.public_key.hex(),
                    "cluster": self.clusters[d],
                    "gateway": self.gateway_of[d],
                }
            )
        for role, group in (("gateway", self.gateways), ("validator", self.validators)):
            for i, (ident, account) in enumerate(group):
                on_chain.append(
                    Member(ident.id, role, ident.public_key, i, "active", account.address)
                )
                listed.append(
                    {
                        "role": role,
                        "name": ident.name,
                        "index": i,
                        "id": ident.id.hex(),
                        "key": ident.public_key.hex(),
                        "account": account.address,
                    }
                )
        return on_chain, listed


def device_nonce(seed: int, r: int, device: int) -> bytes:
    """The 16-byte nonce of a device's envelope (seeded in a simulation; a real device draws
    it from ``os.urandom``)."""
    return hashlib.sha256(f"fedledger/nonce/{seed}/{r}/{device}".encode()).digest()[:16]


def make_participants(
    seed: int, device_names: list[str], clusters: list[str], gateways: int, validators: int
) -> Participants:
    """Devices, gateways (``gateways``, or one per cluster up to 8 when 0) and validators."""
    names = sorted(set(clusters))
    index = {c: i for i, c in enumerate(names)}
    n_gateways = gateways or min(len(names), MAX_AUTO_GATEWAYS)
    return Participants(
        devices=[derive_identity(seed, "device", name) for name in device_names],
        clusters=[index[c] for c in clusters],
        gateway_of=[index[c] % n_gateways for c in clusters],
        gateways=[
            (derive_identity(seed, "gateway", f"gateway-{g}"), derive_account(seed, "gateway", g))
            for g in range(n_gateways)
        ],
        validators=[
            (
                derive_identity(seed, "validator", f"validator-{v}"),
                derive_account(seed, "validator", v),
            )
            for v in range(validators)
        ],
        authority=derive_account(seed, "authority", 0),
    )


def _receipt(rc: Receipt) -> dict[str, Any]:
    return {"tx": rc.tx_hash, "gas": rc.gas_used}


class Network:
    """Devices' signing, gateways and the chain client, driven round by round.

    Build it with :meth:`start` from a JSON-ready ``spec`` (see
    :func:`fedledger.fl.ledger_setup.network_spec`).
    """

    def __init__(self, spec: dict[str, Any], people: Participants, client: LedgerClient) -> None:
        self.spec = spec
        self.people = people
        self.client = client
        self.seed = int(spec["seed"])
        max_payload = int(float(spec["max_payload_mb"]) * 2**20)
        n_params = int(spec["n_params"])
        scheme = str(spec.get("scheme", PLAIN_F32))
        size = spec.get("payload_size")
        self.gateways = [
            Gateway(g, n_params, max_payload, scheme, None if size is None else int(size))
            for g in range(len(people.gateways))
        ]
        self.registry = {
            d.id: KeyStatus(d.public_key, True, people.gateway_of[i])
            for i, d in enumerate(people.devices)
        }

    # ---- set-up ---------------------------------------------------------------------------
    @classmethod
    def start(cls, spec: dict[str, Any]) -> tuple[Network, dict[str, Any]]:
        """Deploy a new ledger (``spec["done"] is None``) or replay one up to round ``done``."""
        people = make_participants(
            int(spec["seed"]),
            list(spec["device_names"]),
            list(spec["clusters"]),
            int(spec["gateways"]),
            int(spec["validators"]),
        )
        records = LedgerRecords(Path(spec["run_dir"]))
        if spec.get("done") is None:
            client = cls._deploy(spec, people, records)
        else:
            client = cls._attach(spec, people, records, int(spec["done"]))
        net = cls(spec, people, client)
        revoked = {m.id for m in client.members() if m.role == "device" and m.status != "active"}
        for i, ident in enumerate(people.devices):  # revocations before a restart still hold
            if ident.id in revoked:
                net.registry[ident.id] = KeyStatus(ident.public_key, False, people.gateway_of[i])
        measurement = spec.get("measurement")
        return net, {
            "latest_model": client.latest_model().hex(),
            "contracts": client.addresses,
            "chain_id": client.backend.chain_id,
            # what devices read from the registry before sealing anything to an enclave
            "registered": [measurement]
            if measurement and client.measurement_ok(bytes.fromhex(measurement))
            else [],
        }

    @staticmethod
    def _backend(
        spec: dict[str, Any], people: Participants, records: LedgerRecords
    ) -> ChainBackend:
        accounts = [people.authority.address]
        accounts += [a.address for _, a in people.gateways + people.validators]
        if spec["backend"] == "embedded":
            return EmbeddedChain(accounts, log_path=records.chain_log, blocks="round")
        chain = RpcChain(str(spec["url"]), log_path=records.chain_log)
        chain.fund(accounts)
        return chain

    @classmethod
    def _deploy(
        cls, spec: dict[str, Any], people: Participants, records: LedgerRecords
    ) -> LedgerClient:
        records.path.mkdir(parents=True, exist_ok=True)
        backend = cls._backend(spec, people, records)
        client = LedgerClient.deploy(
            backend,
            people.authority,
            quorum=int(spec["quorum"]),
            genesis_model=bytes.fromhex(spec["genesis"]),
            token_supply=int(spec["token_supply"]),
        )
        members, _ = people.members()
        client.register(members)
        stake = int(spec.get("stake", 0))
        if stake > 0:  # every device stakes at registration; free riding costs it
            for ident in people.devices:
                client.grant_stake(ident.id, stake)
        if spec.get("measurement"):  # the enclave code and config the authority approves
            client.register_measurement(bytes.fromhex(spec["measurement"]))
        client.seal()
        return client

    @staticmethod
    def _attach(
        spec: dict[str, Any], people: Participants, records: LedgerRecords, done: int
    ) -> LedgerClient:
        deployment = records.deployment()
        if deployment.get("authority") != people.authority.address:
            raise CheckpointError(f"{records.run_dir}: the ledger was deployed with another seed")
        if spec["backend"] != "embedded":
            raise LedgerError("--resume of a run on an rpc ledger is not supported")
        backend = EmbeddedChain.replay(records.chain_log, upto_round=done)
        return LedgerClient.attach(backend, people.authority, deployment["contracts"])

    # ---- per round ------------------------------------------------------------------------
    def open_round(self, r: int, base: str, config: str) -> list[dict[str, Any]]:
        rc = self.client.open_round(r, bytes.fromhex(base), bytes.fromhex(config))
        return [_receipt(rc)]

    def set_status(self, device: int, active: bool, r: int) -> list[dict[str, Any]]:
        ident = self.people.devices[device]
        rc = self.client.set_status(ident.id, "active" if active else "revoked", round=r)
        self.registry[ident.id] = KeyStatus(
            ident.public_key, active, self.people.gateway_of[device]
        )
        return [_receipt(rc)]

    def exchange(
        self, r: int, inbox: dict[int, list[bytes]], rows: dict[tuple[bytes, bytes], int]
    ) -> dict[str, Any]:
        """Gateways check the envelopes sent to them and commit; devices verify their inclusion
        proofs. ``rows`` maps ``(device id, nonce)`` of the devices' own envelopes to their row
        of the round's update matrix; the update of any other accepted envelope is returned."""
        inbox = {g: list(inbox.get(g, [])) for g in range(len(self.gateways))}
        receipts: list[dict[str, Any]] = []
        batches: list[dict[str, Any]] = []
        for gw in self.gateways:
            batch = gw.collect(r, inbox[gw.index], self.registry)
            accepted = []
            for env, update in zip(batch.accepted, batch.updates, strict=True):
                row = rows.get((env.header.device_id, env.header.nonce), -1)
                item: dict[str, Any] = {"row": row, "n_samples": env.header.n_samples}
                if row < 0 and update is not None:  # not from training: carry its update
                    item["update"] = update.astype("<f4").tobytes().hex()
                elif row < 0:  # a protected payload the gateway cannot read
                    item["payload"] = env.payload.hex()
                accepted.append(item)
            if batch.accepted:
                account = self.people.gateways[gw.index][1]
                receipts.append(_receipt(self.client.commit(r, account, batch.root, len(accepted))))
                assert batch.tree is not None
                n = len(batch.accepted)
                for i, env in enumerate(batch.accepted):  # each device checks its proof
                    if not verify_inclusion(env.digest(), i, n, batch.tree.proof(i), batch.root):
                        raise FedledgerError(
                            f"round {r}: device {env.header.device_id.hex()} cannot prove its "
                            f"envelope is in gateway-{gw.index}'s committed root"
                        )
            batches.append(
                {
                    "gateway": gw.index,
                    "root": batch.root.hex(),
                    "accepted": accepted,
                    "rejected": [
                        {"device": x.device, "reason": x.reason, "detail": x.detail}
                        for x in batch.rejected
                    ],
                    "envelopes": [
                        {"header": env.header.to_json(), "signature": env.signature.hex()}
                        for env in batch.accepted
                    ],
                }
            )
        return {"batches": batches, "receipts": receipts}

    def vote(self, r: int, ballots: list[dict[str, Any]]) -> dict[str, Any]:
        """Every validator's vote, then the round as the contract sees it."""
        receipts = []
        for b in ballots:
            account = self.people.validators[int(b["validator"])][1]
            rc = self.client.vote(
                r,
                account,
                *(
                    bytes.fromhex(b[k])
                    for k in ("model", "accepted", "rewards", "metrics", "quote")
                ),
            )
            receipts.append(_receipt(rc))
        info = self.client.round_info(r)
        return {
            "receipts": receipts,
            "status": info.status,
            "base": info.base.hex(),
            "model": info.model.hex(),
            "accepted": info.accepted.hex(),
            "rewards": info.rewards.hex(),
        }

    def settle(
        self, r: int, rewards: list[list[int]], penalties: list[list[int]]
    ) -> list[dict[str, Any]]:
        """After round ``r`` finalised: pay its rewards (``[device, amount]`` pairs in device
        order, which the contract checks against the finalised rewards digest) in one
        transaction, and take each ``[device, amount]`` penalty from a free rider's stake."""
        receipts = []
        if rewards:
            ids = [self.people.devices[d].id for d, _ in rewards]
            rc = self.client.payout(r, ids, [a for _, a in rewards])
            receipts.append(_receipt(rc))
        for d, amount in penalties:
            rc = self.client.penalise(r, self.people.devices[d].id, amount)
            receipts.append(_receipt(rc))
        return receipts

    def seal(self) -> None:
        """End of the round: seal its block (written to the chain log)."""
        self.client.seal()

    def close(self) -> None:
        self.client.seal()
        self.client.backend.close()


class LocalNetwork:
    """:class:`Network` in this process, with :class:`NetworkProcess`'s interface: requests
    "sent ahead" run at once and their results wait for :meth:`collect`."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.net, self.info = Network.start(spec)
        self._results: list[Any] = []

    def open_round_async(self, r: int, base: str, config: str) -> None:
        self._results.append(self.net.open_round(r, base, config))

    def seal_async(self) -> None:
        self.net.seal()
        self._results.append(None)

    def exchange_async(
        self, r: int, inbox: dict[int, list[bytes]], rows: dict[tuple[bytes, bytes], int]
    ) -> None:
        self._results.append(self.net.exchange(r, inbox, rows))

    def collect(self) -> list[Any]:
        results, self._results = self._results, []
        return results

    def set_status(self, device: int, active: bool, r: int) -> list[dict[str, Any]]:
        return self.net.set_status(device, active, r)

    def vote(self, r: int, ballots: list[dict[str, Any]]) -> dict[str, Any]:
        return self.net.vote(r, ballots)

    def settle(
        self, r: int, rewards: list[list[int]], penalties: list[list[int]]
    ) -> list[dict[str, Any]]:
        return self.net.settle(r, rewards, penalties)

    def close(self) -> None:
        self.net.close()
