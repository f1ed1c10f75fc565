"""Defences inside the round: flagged devices, detection, root data, enclave and ledger."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fedledger.assemble import build_simulation, prepare_run
from fedledger.audit import audit_run
from fedledger.config import load_config
from fedledger.fl.detection import detection_counts, detection_summary, prf
from fedledger.fl.probe import choose_root_rows
from tests.conftest import make_dataset

BASE = ["ledger.backend=none", "train.lr=0.1", "train.batch_size=8", "model.hidden=[16]"]
ATTACK = ["attack.name=sign_flip", "attack.fraction=0.3", "strategy.name=screen"]


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_detection_counts_and_the_device_level_majority_rule() -> None:
    bad = frozenset({1, 2})
    assert detection_counts([0, 1, 2, 3], [1, 3], bad) == {
        "tp": 1,
        "fp": 1,
        "fn": 1,
        **prf(1, 1, 1),
    }
    assert prf(0, 0, 0) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    records = [
        {"round": 1, "screen": {"flagged": [1, 3]}},
        {"round": 2, "screen": {"flagged": [1, 2]}},
        {"round": 3, "screen": {"flagged": [1]}},
    ]
    rounds = {1: [0, 1, 2, 3], 2: [0, 1, 2, 3], 3: [0, 1, 2, 3]}
    out = detection_summary(records, rounds, bad, start_round=1)
    # device 1: 3 of 3 rounds, 2: 1 of 3, 3: 1 of 3 -> only device 1 is detected
    assert out is not None and out["detected"] == [1]
    assert (out["tp"], out["fp"], out["fn"]) == (1, 0, 1)
    late = detection_summary(records, rounds, bad, start_round=2)  # 2 of 2 for device 1
    assert late is not None and late["detected"] == [1]
    assert detection_summary([{"round": 1}], rounds, bad, 1) is None  # nothing screened


def test_root_rows_are_a_seeded_sample_of_the_devices_rows() -> None:
    rows = [np.arange(0, 50), np.arange(50, 60), np.array([], dtype=np.int64)]
    a = choose_root_rows(rows, 20, seed=3)
    assert len(a) == 20 and np.all(np.diff(a) > 0) and set(a) <= set(range(60))
    assert np.array_equal(a, choose_root_rows(rows, 20, seed=3))
    assert not np.array_equal(a, choose_root_rows(rows, 20, seed=4))
    assert np.array_equal(choose_root_rows(rows, 500, seed=3), np.arange(60))


def test_the_screen_reports_flagged_devices_and_detection(tmp_path: Path) -> None:
    cfg = load_config(None, [*BASE, *ATTACK, "train.rounds=3"])
    runner, _ = prepare_run(cfg, tmp_path / "run", data=make_dataset(n_clients=10, n_classes=3))
    summary = runner.run()
    sim = runner.sim
    assert sim.root_rows is not None and len(sim.root_rows) == cfg.strategy.root_samples
    records = lines(tmp_path / "run" / "metrics.jsonl")
    for rec in records:
        screen = rec["screen"]
        assert isinstance(screen, dict)
        flagged = set(screen["flagged"])
        assert screen == {
            "flagged": sorted(flagged),
            **detection_counts(sim.sample_devices(int(rec["round"])), flagged, sim.malicious),
        }
    det = summary["detection"]
    assert det["recall"] == 1.0 and det["precision"] >= 0.75  # sign flipping is blatant
    assert set(det["detected"]) >= set(sim.malicious)


def test_a_clean_round_turns_on_the_proximal_term_for_the_next(monkeypatch) -> None:
    cfg = load_config(None, [*BASE, "strategy.name=screen", "strategy.screen_threshold=1e9"])
    sim = build_simulation(cfg, data=make_dataset(n_clients=6, n_classes=3))
    seen: list[float] = []
    train = sim.trainer.train

    def spy(params, plan, x, y, lr, mu):  # type: ignore[no-untyped-def]
        seen.append(mu)
        return train(params, plan, x, y, lr, mu)

    monkeypatch.setattr(sim.trainer, "train", spy)
    sim.run_round(1)
    sim.run_round(2)
    assert seen == [0.0, cfg.train.mu]  # round 1 was clean: round 2 is FedProx


def test_fltrust_trains_its_reference_on_the_root_rows() -> None:
    cfg = load_config(None, [*BASE, "strategy.name=fltrust", "strategy.root_samples=30"])
    sim = build_simulation(cfg, data=make_dataset(n_clients=6, n_classes=3))
    assert sim.root_rows is not None and len(sim.root_rows) == 30
    ref = sim.reference_update(1)
    assert ref.shape == sim.global_params.shape and float(ref.norm()) > 0
    assert torch.equal(ref, sim.reference_update(1))  # seeded
    before = sim.global_params.clone()
    result = sim.run_round(1)
    assert not torch.equal(result.global_params, before)


@pytest.mark.parametrize("ledger", ["none", "embedded"])
def test_screening_in_the_enclave_matches_plain_and_audits(tmp_path: Path, ledger: str) -> None:
    """The enclave rebuilds the model, scores each update on the root data and flags the same
    devices as plain screening; the model is bit-identical, and on the ledger the audit checks
    the flags against the transcript and the votes."""
    data = make_dataset(n_clients=10, n_classes=3)
    out = {}
    for mode in ("none", "enclave"):
        over = [*BASE, *ATTACK, "attack.fraction=0.2", "train.rounds=2", f"ledger.backend={ledger}"]
        cfg = load_config(None, [*over, f"security.secure_aggregation={mode}"])
        runner, _ = prepare_run(cfg, tmp_path / mode, data=data)
        out[mode] = runner.run()
        if ledger != "none":
            assert audit_run(tmp_path / mode).ok
    assert out["none"]["model_sha256"] == out["enclave"]["model_sha256"]
    flags = {
        m: [r["screen"]["flagged"] for r in lines(tmp_path / m / "metrics.jsonl")] for m in out
    }
    assert flags["none"] == flags["enclave"] and any(flags["none"])
    if ledger == "none":
        return
    # the flags are anchored: editing them in rounds.jsonl fails the audit
    path = tmp_path / "enclave" / "ledger" / "rounds.jsonl"
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    recs[0]["screen"]["flagged"] = recs[0]["screen"]["flagged"][1:]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    report = audit_run(tmp_path / "enclave")
    failed = {c.name for c in report.checks if not c.ok}
    assert {"votes", "secure"} <= failed


def test_root_loss_increase_is_the_loss_change_of_each_update_alone() -> None:
    """L(w + Δ_i) − L(w) on the root rows, one model evaluation per update."""
    from fedledger.fl.probe import root_loss_increase

    cfg = load_config(None, [*BASE, "strategy.name=screen", "strategy.root_samples=40"])
    sim = build_simulation(cfg, data=make_dataset(n_clients=6, n_classes=3))
    x, y = sim.root_data()
    assert len(y) == 40
    local = sim.train_devices(1)
    got = root_loss_increase(
        sim.model, sim.layout, sim.task, sim.global_params, local.updates, x, y
    )

    def loss(params: torch.Tensor) -> float:
        sim.layout.load_into(sim.model, params)
        with torch.no_grad():
            out = sim.model(x)
        return float(torch.nn.functional.cross_entropy(out.double(), y))

    base = loss(sim.global_params)
    want = torch.tensor([loss(sim.global_params + u) - base for u in local.updates])
    assert torch.allclose(got, want.double(), atol=1e-5)
    bad = local.updates.clone()
    bad[0] = float("nan")
    assert torch.isinf(
        root_loss_increase(sim.model, sim.layout, sim.task, sim.global_params, bad, x, y)[0]
    )
