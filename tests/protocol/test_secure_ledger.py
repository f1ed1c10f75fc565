"""Secure aggregation on the ledger: protected payloads are what devices sign and gateways
commit; validators anchor their quote of the enclave with their votes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedledger.assemble import prepare_run
from fedledger.config import load_config
from fedledger.errors import AttestationError
from fedledger.fl.ledger_protocol import LedgerProtocol
from fedledger.fl.secure.enclave_mode import SEALED_F32, EnclaveMode
from fedledger.ledger.backends.embedded import EmbeddedChain
from fedledger.report import write_report
from fedledger.security.enclave.sealing import SEALED_OVERHEAD
from fedledger.security.envelope import seal_envelope
from fedledger.security.payload import PLAIN_F32, encode_f32
from tests.conftest import make_dataset

CFG = ["train.rounds=3", "train.lr=0.1", "train.batch_size=8", "model.hidden=[16]"]


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def records(run_dir: Path, name: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(x) for x in lines(run_dir / name)]


def test_an_enclave_run_gives_the_plain_model_and_anchors_quotes(tmp_path: Path) -> None:
    data = make_dataset(n_clients=6)
    digests = {}
    for mode in ("none", "enclave"):
        cfg = load_config(None, [*CFG, f"security.secure_aggregation={mode}"])
        runner, _ = prepare_run(cfg, tmp_path / mode, data=data)
        runner.run()
        digests[mode] = (tmp_path / mode / "model.sha256").read_text().split()[0]
    assert digests["enclave"] == digests["none"]
    run_dir = tmp_path / "enclave"
    deployment = json.loads((run_dir / "ledger" / "deployment.json").read_text())
    assert deployment["security"]["enclave"]["label"] == "simulated: not hardware-protected"
    rounds = records(run_dir, "ledger/rounds.jsonl")
    assert all(
        r["status"] == "finalised" and "transcript" in r["secure"]["evidence"] for r in rounds
    )
    assert all(v["quote"] for r in rounds for v in r["votes"])
    envelopes = records(run_dir, "ledger/envelopes.jsonl")
    assert {e["header"]["scheme"] for e in envelopes} == {SEALED_F32}
    chain = EmbeddedChain.replay(run_dir / "ledger" / "chain.jsonl", readonly=True)
    assert chain is not None  # the log replays with the measurement registration in it
    report = write_report(run_dir).read_text()
    assert "## Secure aggregation" in report and "not hardware-protected" in report


def test_devices_refuse_to_seal_when_the_registry_lacks_the_measurement(tmp_path: Path) -> None:
    cfg = load_config(None, [*CFG, "security.secure_aggregation=enclave"])
    runner, _ = prepare_run(cfg, tmp_path / "run", data=make_dataset(n_clients=6))
    secure = runner.sim.secure
    assert isinstance(secure, EnclaveMode)
    secure.registered = frozenset().__contains__  # e.g. the authority revoked it
    with pytest.raises(AttestationError, match=r"refuses the enclave.*not registered"):
        runner.run()


def test_gateways_and_the_enclave_refuse_bad_protected_envelopes(tmp_path: Path) -> None:
    cfg = load_config(
        None,
        [
            *CFG,
            "train.rounds=1",
            "train.clients_per_round=4",
            "security.secure_aggregation=enclave",
        ],
    )
    runner, _ = prepare_run(cfg, tmp_path / "run", data=make_dataset(n_clients=6))
    proto = runner.sim.driver
    assert isinstance(proto, LedgerProtocol)
    idle = [d for d in range(6) if d not in runner.sim.sample_devices(1)]
    size = 4 * runner.sim.layout.total + SEALED_OVERHEAD
    plain = encode_f32(runner.sim.global_params.numpy() * 0)
    a, b = (proto.people.devices[d] for d in idle)
    bad = {
        idle[0]: seal_envelope(a, 1, 50, PLAIN_F32, plain, b"p" * 16),  # not sealed
        idle[1]: seal_envelope(b, 1, 50, SEALED_F32, bytes(size), b"g" * 16),  # garbage
    }
    proto.inbox = {}
    for d, env in bad.items():
        proto.inbox.setdefault(proto.people.gateway_of[d], []).append(env.encode())
    runner.run()
    first = json.loads(lines(tmp_path / "run" / "metrics.jsonl")[0])
    assert first["ledger"]["rejections"] == {"unknown-scheme": 1}
    assert first["ledger"]["accepted"] == 5  # the gateway cannot read it, so it commits it
    assert first["secure"]["refused"] == {"unsealable": 1} and first["secure"]["aggregated"] == 4


def test_secagg_with_dropouts_finalises_every_round(tmp_path: Path) -> None:
    cfg = load_config(
        None, [*CFG, "security.secure_aggregation=secagg+", "security.secagg_dropout=0.2"]
    )
    runner, _ = prepare_run(cfg, tmp_path / "run", data=make_dataset(n_clients=10))
    runner.run()
    metrics = records(tmp_path / "run", "metrics.jsonl")
    assert all(m["ledger"]["finalised"] for m in metrics)
    assert all(m["secure"]["dropped"] == 2 and m["ledger"]["accepted"] == 8 for m in metrics)
    rounds = records(tmp_path / "run", "ledger/rounds.jsonl")
    assert all(v["quote"] is None for r in rounds for v in r["votes"])  # no enclave to attest
