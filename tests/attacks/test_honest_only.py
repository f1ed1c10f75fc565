"""``attack.honest_only``: the malicious devices sit out while the attack runs, as if a defence
had found exactly them, and the matrix runs it as the ``honest_only`` reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fedledger.assemble import build_simulation
from fedledger.cli import build_app
from fedledger.config import load_config
from fedledger.errors import ConfigError
from fedledger.fl.engine import Simulation
from fedledger.fl.round_data import LocalUpdates
from fedledger.matrix import Cell, MatrixSpec
from tests.conftest import make_dataset

BASE = [
    "ledger.backend=none",
    "train.lr=0.1",
    "train.batch_size=8",
    "model.hidden=[16]",
    "attack.name=sign_flip",
    "attack.fraction=0.3",
    "attack.start_round=2",
]


def sim(*overrides: str) -> Simulation:
    cfg = load_config(None, [*BASE, *overrides])
    return build_simulation(cfg, data=make_dataset(n_clients=10, n_classes=3))


def test_without_drops_the_rows_clones_and_places_of_the_devices_left_out() -> None:
    updates = torch.arange(8.0).reshape(4, 2)
    local = LocalUpdates(
        devices=[0, 1, 2, 3],
        order=[2, 0, 3, 1],
        updates=updates,
        weights=torch.tensor([5.0, 6.0, 7.0, 8.0]),
        seconds=1.5,
        sybils=[(3, updates[2]), (0, updates[1])],
    )
    kept = local.without(frozenset({3, 1}))
    assert kept.devices == [0, 2] and kept.order == [2, 0]
    assert torch.equal(kept.updates, updates[[0, 1]])
    assert torch.equal(kept.weights, torch.tensor([5.0, 6.0]))
    assert [d for d, _ in kept.sybils] == [0] and kept.seconds == 1.5


def test_the_model_is_fedavg_over_the_honest_devices_once_the_attack_starts() -> None:
    reference, run = sim(), sim("attack.honest_only=true")
    assert run.malicious and run.malicious == reference.malicious
    for r in (1, 2, 3):
        local = reference.train_devices(r)
        if r >= 2:  # before the attack starts every device takes part
            local = local.without(reference.malicious)
        reference.aggregate(r, local)
        result = run.run_round(r)
        assert torch.equal(run.global_params, reference.global_params), r
        sitting_out = run.malicious if r >= 2 else frozenset()
        assert result.devices == sorted(set(range(10)) - sitting_out)
    attacked = sim()
    for r in (1, 2, 3):
        attacked.run_round(r)
    assert not torch.equal(attacked.global_params, run.global_params)  # the attack bites


def test_honest_only_is_refused_with_a_ledger() -> None:
    cfg = load_config(None, [*BASE, "ledger.backend=embedded", "attack.honest_only=true"])
    with pytest.raises(ConfigError, match=r"attack\.honest_only.*ledger\.backend"):
        build_simulation(cfg, data=make_dataset(n_clients=10, n_classes=3))


def test_the_matrix_runs_honest_only_as_fedavg_with_the_malicious_devices_sitting_out() -> None:
    spec = MatrixSpec.parse(
        None,
        ["ledger.backend=none"],
        attacks="none,sign_flip",
        defences="screen,honest_only",
        fractions="0.3",
    )
    cell = Cell("honest_only", "sign_flip", 0.3, 0)
    assert cell in spec.cells()
    cfg = spec.config_for(cell)
    assert cfg.strategy.name == "fedavg" and cfg.attack.honest_only
    assert not spec.config_for(Cell("screen", "sign_flip", 0.3, 0)).attack.honest_only
    with pytest.raises(ConfigError, match=r"attack\.honest_only"):
        MatrixSpec.parse(None, [], attacks="sign_flip", defences="honest_only", fractions="0.3")


def test_a_screened_run_without_the_malicious_devices_reports_no_detection(
    tmp_path: Path,
) -> None:
    """With nobody malicious taking part there is nothing to find: no detection counts per
    round and no run-level detection (before, the sat-out devices counted as missed)."""
    out = tmp_path / "run"
    args = ["run", "--out", str(out), *(f"--set={o}" for o in BASE)]
    args += ["--set=train.rounds=3", "--set=data.clients=10", "--set=attack.honest_only=true"]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all("screen" in r and "tp" not in r["screen"] for r in records)
    assert "detection" not in json.loads((out / "summary.json").read_text())
    assert "malicious devices (precision" not in result.output
