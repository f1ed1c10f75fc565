"""Sybil clones: heard without a ledger, refused by the ledger's registry."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from fedledger.assemble import build_simulation, prepare_run
from fedledger.audit import audit_run
from fedledger.config import load_config
from fedledger.strategies.base import weighted_mean
from tests.conftest import make_dataset

BASE = ["train.lr=0.1", "train.batch_size=8", "model.hidden=[16]", "strategy.name=fedavg"]
SYBIL = ["attack.name=sybil", "attack.fraction=0.2", "attack.sybils=3"]


def test_without_a_ledger_the_clones_are_aggregated_with_their_devices_weight() -> None:
    cfg = load_config(None, [*BASE, *SYBIL, "ledger.backend=none"])
    sim = build_simulation(cfg, data=make_dataset(n_clients=10, n_classes=3))
    local = sim.train_devices(1)
    assert len(local.sybils) == 3 * len(sim.malicious) == 6
    for d, row in local.sybils:
        k = local.order.index(d)
        assert d in sim.malicious and torch.equal(row, local.updates[k])  # a copy of its update
    heard = local.with_sybils()
    assert heard.order[-6:] == [-1] * 6 and heard.updates.shape[0] == len(local.order) + 6
    base = sim.global_params.clone()
    sim.run_round(1)
    assert torch.allclose(sim.global_params, base + weighted_mean(heard.updates, heard.weights))


def test_the_ledger_refuses_every_clone_as_unregistered(tmp_path: Path) -> None:
    cfg = load_config(None, [*BASE, *SYBIL, "train.rounds=2"])
    runner, _ = prepare_run(cfg, tmp_path / "run", data=make_dataset(n_clients=10, n_classes=3))
    runner.run()
    for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines():
        ledger = json.loads(line)["ledger"]
        assert ledger["rejections"] == {"unregistered": 6}
        assert ledger["accepted"] == 10 and ledger["finalised"]
    assert audit_run(tmp_path / "run").ok


def test_an_enclave_without_a_ledger_hears_the_clones(tmp_path: Path) -> None:
    over = [*BASE, *SYBIL, "ledger.backend=none", "security.secure_aggregation=enclave"]
    cfg = load_config(None, [*over, "train.rounds=1"])
    runner, _ = prepare_run(cfg, tmp_path / "run", data=make_dataset(n_clients=10, n_classes=3))
    runner.run()
    secure = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())["secure"]
    assert secure["aggregated"] == 16
