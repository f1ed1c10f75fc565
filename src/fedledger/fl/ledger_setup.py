"""Setting up a run's ledger: keys for everyone, contracts, registration, the genesis model.

A new run derives every participant's keys from the run seed (simulated keys are therefore
not secret), stores the initial model blob, and starts the network side
(:mod:`fedledger.fl.network`), which deploys Registry, Rounds and Token and registers devices,
gateways and validators in batches; the deployment is recorded in ``RUN/ledger/``. A resumed
run replays the embedded chain up to its last checkpointed round instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedledger.config import Config, config_digest
from fedledger.fl.engine import Simulation
from fedledger.fl.ledger_protocol import LedgerProtocol, NetworkLike
from fedledger.fl.ledger_records import LedgerRecords
from fedledger.fl.network import LocalNetwork, Participants, make_participants
from fedledger.fl.network_process import NetworkProcess
from fedledger.fl.secure.attested import AttestedMode
from fedledger.ledger.model_store import ModelStore
from fedledger.security.payload import PLAIN_F32

__all__ = [
    "ENCLAVE_LABEL",
    "attach_ledger",
    "deploy_ledger",
    "ledger_config_digest",
    "security_record",
]

ENCLAVE_LABEL = "simulated: not hardware-protected"
"""How the shipped enclave backend is labelled wherever it appears."""


def ledger_config_digest(config: Config) -> bytes:
    """The config digest every round is opened with: the resolved config, except
    ``train.rounds`` (which ``--resume`` may raise to extend a run) and
    ``ledger.separate_process`` (where the network side runs, not what it computes)."""
    fixed = config.model_copy(
        update={
            "train": config.train.model_copy(update={"rounds": 0}),
            "ledger": config.ledger.model_copy(update={"separate_process": True}),
        }
    )
    return bytes.fromhex(config_digest(fixed))


def _spec(
    sim: Simulation, config: Config, run_dir: Path, genesis: str, done: int | None
) -> dict[str, Any]:
    led = config.ledger
    return {
        "seed": config.train.seed,
        "backend": led.backend,
        "url": led.url,
        "quorum": led.quorum,
        "gateways": led.gateways,
        "validators": led.validators,
        "max_payload_mb": led.max_payload_mb,
        "token_supply": led.token_supply,
        "stake": 0 if sim.book is None else sim.book.settings.stake,
        "run_dir": str(run_dir),
        "device_names": list(sim.data.device_names),
        "clusters": list(sim.data.clusters),
        "n_params": sim.layout.total,
        "genesis": genesis,
        "done": done,
        **_secure_spec(sim),
    }


def _secure_spec(sim: Simulation) -> dict[str, Any]:
    """What the gateways and the registry need to know of the secure-aggregation mode."""
    secure = sim.secure
    if secure is None:
        return {"scheme": PLAIN_F32, "payload_size": None, "measurement": None}
    return {
        "scheme": secure.scheme,
        "payload_size": secure.payload_size(),
        "measurement": secure.approved.hex() if isinstance(secure, AttestedMode) else None,
    }


def _trust_registry(sim: Simulation, info: dict[str, Any]) -> None:
    """Devices accept only enclave measurements the ledger's registry holds."""
    registered = frozenset(bytes.fromhex(m) for m in info.get("registered", []))
    if isinstance(sim.secure, AttestedMode):
        sim.secure.registered = registered.__contains__


def security_record(sim: Simulation, config: Config) -> dict[str, Any]:
    """The ``security`` entry of ``deployment.json``."""
    record: dict[str, Any] = {"secure_aggregation": config.security.secure_aggregation}
    secure = sim.secure
    if isinstance(secure, AttestedMode):
        record["enclave"] = {
            "measurement": secure.approved.hex(),
            "platform_key": secure.platform_key.hex(),
            "backend": "process",
            "label": ENCLAVE_LABEL,
        }
    return record


def _start(spec: dict[str, Any], config: Config) -> tuple[NetworkLike, dict[str, Any]]:
    if config.ledger.separate_process:
        proc = NetworkProcess(spec)
        return proc, proc.info
    local = LocalNetwork(spec)
    return local, local.info


def _participants(sim: Simulation, config: Config) -> Participants:
    return make_participants(
        config.train.seed,
        list(sim.data.device_names),
        list(sim.data.clusters),
        config.ledger.gateways,
        config.ledger.validators,
    )


def deploy_ledger(sim: Simulation, config: Config, run_dir: Path) -> LedgerProtocol:
    """A new ledger for a new run; returns the protocol the simulation runs rounds through."""
    records = LedgerRecords(run_dir)
    genesis = ModelStore(records.store_dir).put(LedgerProtocol.genesis_blob(sim))
    led = config.ledger
    people = _participants(sim, config)
    network, info = _start(_spec(sim, config, run_dir, genesis, None), config)
    _trust_registry(sim, info)
    _, listed = people.members()
    records.write_deployment(
        {
            "format": "fedledger-ledger/v1",
            "backend": led.backend,
            "url": led.url,
            "chain_id": info["chain_id"],
            "contracts": info["contracts"],
            "authority": people.authority.address,
            "quorum": led.quorum,
            "validators": led.validators,
            "byzantine": led.byzantine,
            "byzantine_mode": led.byzantine_mode,
            "genesis_model": genesis,
            "security": security_record(sim, config),
            "members": listed,
        }
    )
    return LedgerProtocol(
        sim, network, led, people, records, ledger_config_digest(config), bytes.fromhex(genesis)
    )


def attach_ledger(sim: Simulation, config: Config, run_dir: Path, done: int) -> LedgerProtocol:
    """The ledger of a run being resumed after round ``done``: the embedded chain is replayed
    (checking every block) and cut back to that round, with the folder's records."""
    records = LedgerRecords(run_dir)
    deployment = records.deployment()
    led = config.ledger
    people = _participants(sim, config)
    network, info = _start(_spec(sim, config, run_dir, deployment["genesis_model"], done), config)
    _trust_registry(sim, info)
    records.truncate(done)
    return LedgerProtocol(
        sim,
        network,
        led,
        people,
        records,
        ledger_config_digest(config),
        bytes.fromhex(info["latest_model"]),
    )
