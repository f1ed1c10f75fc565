"""Setting up a run's ledger: keys for everyone, contracts, registration, the genesis model.

A new run derives every participant's keys from the run seed (simulated keys are therefore
not secret), deploys Registry, Rounds and Token, registers devices, gateways and validators in
batches, stores the initial model blob and records the deployment in ``RUN/ledger/``. A
resumed run replays the embedded chain up to its last checkpointed round instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedledger.config import Config, config_digest
from fedledger.errors import CheckpointError, LedgerError
from fedledger.fl.engine import Simulation
from fedledger.fl.gateway import KeyStatus
from fedledger.fl.ledger_protocol import LedgerProtocol, Participants
from fedledger.fl.ledger_records import LedgerRecords
from fedledger.ledger.accounts import derive_account
from fedledger.ledger.backends.base import ChainBackend
from fedledger.ledger.backends.embedded import EmbeddedChain
from fedledger.ledger.backends.rpc import RpcChain
from fedledger.ledger.client import LedgerClient
from fedledger.ledger.model_store import ModelStore
from fedledger.ledger.records import Member
from fedledger.security.identity import derive_identity

__all__ = ["attach_ledger", "deploy_ledger", "ledger_config_digest", "make_participants"]

MAX_AUTO_GATEWAYS = 8


def ledger_config_digest(config: Config) -> bytes:
    """The config digest every round is opened with: the resolved config, except
    ``train.rounds`` (which ``--resume`` may raise to extend a run)."""
    fixed = config.model_copy(update={"train": config.train.model_copy(update={"rounds": 0})})
    return bytes.fromhex(config_digest(fixed))


def make_participants(sim: Simulation, config: Config) -> Participants:
    """Devices (one Ed25519 key each), gateways (one per cluster, or ``ledger.gateways``) and
    validators, with EVM accounts for those that transact."""
    seed = config.train.seed
    data = sim.data
    clusters = sorted(set(data.clusters))
    n_gateways = config.ledger.gateways or min(len(clusters), MAX_AUTO_GATEWAYS)
    cluster_index = {c: i for i, c in enumerate(clusters)}
    return Participants(
        devices=[derive_identity(seed, "device", name) for name in data.device_names],
        gateway_of=[cluster_index[c] % n_gateways for c in data.clusters],
        gateways=[
            (derive_identity(seed, "gateway", f"gateway-{g}"), derive_account(seed, "gateway", g))
            for g in range(n_gateways)
        ],
        validators=[
            (
                derive_identity(seed, "validator", f"validator-{v}"),
                derive_account(seed, "validator", v),
            )
            for v in range(config.ledger.validators)
        ],
        authority=derive_account(seed, "authority", 0),
    )


def _members(sim: Simulation, people: Participants) -> tuple[list[Member], list[dict[str, Any]]]:
    clusters = sorted(set(sim.data.clusters))
    on_chain: list[Member] = []
    listed: list[dict[str, Any]] = []
    for d, ident in enumerate(people.devices):
        cluster = clusters.index(sim.data.clusters[d])
        on_chain.append(Member(ident.id, "device", ident.public_key, cluster))
        listed.append(
            {
                "role": "device",
                "name": ident.name,
                "index": d,
                "id": ident.id.hex(),
                "key": ident.public_key.hex(),
                "cluster": cluster,
                "gateway": people.gateway_of[d],
            }
        )
    for role, group in (("gateway", people.gateways), ("validator", people.validators)):
        for i, (ident, account) in enumerate(group):
            on_chain.append(Member(ident.id, role, ident.public_key, i, "active", account.address))
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


def _backend(config: Config, records: LedgerRecords, people: Participants) -> ChainBackend:
    accounts = [people.authority.address]
    accounts += [a.address for _, a in people.gateways + people.validators]
    if config.ledger.backend == "embedded":
        return EmbeddedChain(accounts, log_path=records.chain_log, blocks="round")
    chain = RpcChain(config.ledger.url, log_path=records.chain_log)
    chain.fund(accounts)
    return chain


def deploy_ledger(sim: Simulation, config: Config, run_dir: Path) -> LedgerProtocol:
    """A new ledger for a new run; returns the protocol the simulation runs rounds through."""
    records = LedgerRecords(run_dir)
    records.path.mkdir(parents=True, exist_ok=True)
    people = make_participants(sim, config)
    backend = _backend(config, records, people)
    genesis = ModelStore(records.store_dir).put(LedgerProtocol.genesis_blob(sim))
    client = LedgerClient.deploy(
        backend,
        people.authority,
        quorum=config.ledger.quorum,
        genesis_model=bytes.fromhex(genesis),
        token_supply=config.ledger.token_supply,
    )
    members, listed = _members(sim, people)
    client.register(members)
    backend.seal()
    records.write_deployment(
        {
            "format": "fedledger-ledger/v1",
            "backend": config.ledger.backend,
            "url": config.ledger.url,
            "chain_id": backend.chain_id,
            "contracts": client.addresses,
            "authority": people.authority.address,
            "quorum": config.ledger.quorum,
            "validators": config.ledger.validators,
            "byzantine": config.ledger.byzantine,
            "byzantine_mode": config.ledger.byzantine_mode,
            "genesis_model": genesis,
            "members": listed,
        }
    )
    digest = ledger_config_digest(config)
    return LedgerProtocol(
        sim, client, config.ledger, people, records, digest, bytes.fromhex(genesis)
    )


def attach_ledger(sim: Simulation, config: Config, run_dir: Path, done: int) -> LedgerProtocol:
    """The ledger of a run being resumed after round ``done``: the embedded chain is replayed
    (checking every block) and cut back to that round, with the folder's records."""
    records = LedgerRecords(run_dir)
    deployment = records.deployment()
    people = make_participants(sim, config)
    if deployment.get("authority") != people.authority.address:
        raise CheckpointError(f"{run_dir}: the ledger was deployed with another seed")
    backend: ChainBackend
    if config.ledger.backend == "embedded":
        backend = EmbeddedChain.replay(records.chain_log, upto_round=done)
    else:
        raise LedgerError("--resume of a run on an rpc ledger is not supported")
    records.truncate(done)
    client = LedgerClient.attach(backend, people.authority, deployment["contracts"])
    digest = ledger_config_digest(config)
    latest = client.latest_model()
    proto = LedgerProtocol(sim, client, config.ledger, people, records, digest, latest)
    revoked = {m.id for m in client.members() if m.role == "device" and m.status != "active"}
    for ident in people.devices:  # revocations made before the run stopped still hold
        if ident.id in revoked:
            proto.registry[ident.id] = KeyStatus(ident.public_key, False)
    return proto
