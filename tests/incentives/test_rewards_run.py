"""Rewards in whole runs: the issue's bars on the default run with free riders, on the ledger
and audited; a device with noisy labels earns less; resuming keeps the book."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fedledger.assemble import build_simulation, prepare_run
from fedledger.audit import audit_run
from fedledger.config import load_config

FREE_RIDERS = ["attack.name=free_rider", "attack.fraction=0.2", "train.rounds=6"]


@pytest.fixture(scope="module", params=["zero", "stale", "random"])
def ridden(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default run (synthetic data, 20 devices, embedded ledger) with 20% free riders."""
    out = tmp_path_factory.mktemp(f"free-{request.param}") / "run"
    cfg = load_config(None, [*FREE_RIDERS, f"attack.mode={request.param}"])
    runner, _ = prepare_run(cfg, out)
    runner.run()
    return out


def test_free_riders_are_found_penalised_and_get_at_most_5_percent(ridden: Path) -> None:
    summary = json.loads((ridden / "summary.json").read_text())
    rewards = summary["rewards"]
    devices = json.loads((ridden / "devices.json").read_text())["devices"]
    bad = {str(d) for d, x in enumerate(devices) if x["role"] == "malicious"}
    assert len(bad) == 4
    assert rewards["malicious_share"] <= 0.05
    assert sum(rewards["balances"][d] for d in bad) <= 0.05 * rewards["paid"]
    found = rewards["free_rider_detection"]
    assert found["recall"] >= 0.95 and found["precision"] >= 0.9
    # caught twice in a row: reputation 0.25 < 0.3, excluded, and 2 × 10 taken from the stake
    assert rewards["excluded"] == sorted(int(d) for d in bad)
    assert all(rewards["stakes"][d] == 80 for d in bad)
    assert all(rewards["stakes"][d] == 100 for d in rewards["stakes"] if d not in bad)
    assert rewards["paid"] == 6 * 1000


def test_the_audit_passes_and_fails_on_an_edited_balance(ridden: Path, tmp_path: Path) -> None:
    report = audit_run(ridden)
    assert report.ok, [p for c in report.checks for p in c.problems]
    copy = tmp_path / "copy"
    shutil.copytree(ridden, copy)
    summary = json.loads((copy / "summary.json").read_text())
    honest = max(summary["rewards"]["balances"], key=lambda d: summary["rewards"]["balances"][d])
    summary["rewards"]["balances"][honest] += 1
    (copy / "summary.json").write_text(json.dumps(summary))
    edited = audit_run(copy)
    token = next(c for c in edited.checks if c.name == "token")
    assert not edited.ok and not token.ok
    assert any(f"device {honest}'s balance" in p for p in token.problems)


def test_a_payout_record_that_differs_from_the_chain_fails_the_audit(
    ridden: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(ridden, copy)
    path = copy / "ledger" / "rounds.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    paid = rows[2]["rewards"]["paid"]
    first = next(iter(paid))
    paid[first] += 1
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    token = next(c for c in audit_run(copy).checks if c.name == "token")
    assert any("round 3: rounds.jsonl records other rewards" in p for p in token.problems)


def test_a_device_with_noisy_labels_earns_less_than_clean_devices_of_its_size() -> None:
    cfg = load_config(
        None,
        ["ledger.backend=none", "data.partition=iid", "strategy.name=fedavg", "train.rounds=8"],
    )
    sim = build_simulation(cfg)
    sizes = [len(rows) for rows in sim.train_rows]
    rows = sim.train_rows[0]
    rng = np.random.default_rng(1)
    noisy = rows[rng.random(len(rows)) < 0.3]  # 30% of device 0's labels drawn at random
    labels = rng.integers(0, len(sim.data.classes), len(noisy))
    sim.y_train[torch.from_numpy(noisy)] = torch.from_numpy(labels).to(sim.y_train.dtype)
    for r in range(1, 9):
        sim.run_round(r)
    assert sim.book is not None
    same = [d for d in range(1, len(sizes)) if sizes[d] == sizes[0]]
    assert len(same) >= 5
    balances = sim.book.balances
    assert all(balances[0] < balances[d] for d in same), balances.tolist()


def test_a_resumed_run_keeps_the_reward_book(tmp_path: Path) -> None:
    overrides = [*FREE_RIDERS, "ledger.backend=none", "train.rounds=4"]
    whole = tmp_path / "whole"
    runner, _ = prepare_run(load_config(None, overrides), whole)
    full = runner.run()
    part = tmp_path / "part"
    runner, _ = prepare_run(load_config(None, [*overrides[:-1], "train.rounds=2"]), part)
    runner.run()
    runner, done = prepare_run(load_config(None, overrides), part, resume=True)
    assert done == 2
    resumed = runner.run(start_after=done)
    assert resumed["rewards"]["balances"] == full["rewards"]["balances"]
    assert resumed["rewards"]["stakes"] == full["rewards"]["stakes"]
    assert resumed["rewards"]["excluded"] == full["rewards"]["excluded"]


def test_a_resumed_run_sees_a_stale_free_rider_as_the_uninterrupted_one(tmp_path: Path) -> None:
    # the last global step, which a stale free rider replays and the screen compares with,
    # is checkpointed: round 2 after a resume is round 2 of the whole run
    overrides = [*FREE_RIDERS, "attack.mode=stale", "ledger.backend=none"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    runner, _ = prepare_run(load_config(None, [*overrides, "train.rounds=3"]), whole)
    runner.run()
    runner, _ = prepare_run(load_config(None, [*overrides, "train.rounds=1"]), part)
    runner.run()
    runner, done = prepare_run(load_config(None, [*overrides, "train.rounds=3"]), part, resume=True)
    runner.run(start_after=done)

    def rewards(run_dir: Path) -> list[object]:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return [json.loads(x)["rewards"] for x in lines]

    assert rewards(part) == rewards(whole)
    assert set(rewards(whole)[1]["free_riders"].values()) == {"stale"}  # type: ignore[index]


def test_a_metrics_line_that_pays_otherwise_than_the_round_record_fails_the_audit(
    ridden: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(ridden, copy)
    path = copy / "metrics.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    paid = rows[3]["rewards"]["paid"]
    paid[next(iter(paid))] += 1
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = next(c for c in audit_run(copy).checks if c.name == "metrics")
    assert any("(round 4): rewards.paid is" in p for p in metrics.problems), metrics.problems
