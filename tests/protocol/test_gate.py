"""The validator gate: a candidate whose validation accuracy falls by more than
``ledger.gate_margin`` gets no vote, the round finalises the previous model again, the ledger
records why, and the audit recomputes every decision."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fedledger.assemble import prepare_run
from fedledger.audit import audit_run
from fedledger.config import load_config
from fedledger.fl.gate import (
    CANDIDATE,
    FALLBACK,
    NO_QUORUM,
    VOTE,
    fallback_reason,
    gate_decision,
    gate_evidence,
    round_outcome,
)
from fedledger.fl.ledger_protocol import LedgerProtocol
from fedledger.fl.runner import Runner
from fedledger.fl.tasks import ClassificationTask, EvalStats
from fedledger.ledger.model_store import decode_tensors
from fedledger.report import write_report
from fedledger.strategies.base import RoundContext
from fedledger.strategies.fedavgm import FedAvgM
from tests.conftest import make_dataset

CFG = ["train.rounds=3", "train.lr=0.1", "train.batch_size=8", "model.hidden=[16]"]
# half of the devices send −10·Δ from round 2 on: undefended FedAvg's candidate collapses
# (the default screen's direction rule would flag them)
ATTACK = [
    "strategy.name=fedavg",
    "attack.name=sign_flip",
    "attack.fraction=0.5",
    "attack.start_round=2",
    "attack.flip_scale=10",
]


def prepare(out: Path, *overrides: str, attack: bool = True) -> Runner:
    cfg = load_config(None, [*CFG, *(ATTACK if attack else []), *overrides])
    runner, _ = prepare_run(cfg, out, data=make_dataset(n_clients=6))
    return runner


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def rounds(run_dir: Path) -> list[dict[str, Any]]:
    return lines(run_dir / "ledger" / "rounds.jsonl")


def failures(run_dir: Path) -> dict[str, list[str]]:
    return {c.name: c.problems for c in audit_run(run_dir).checks if not c.ok}


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gate") / "run"
    prepare(out).run()
    return out


@pytest.fixture
def copy(gated: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(gated, target)
    return target


# ---- the decision ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("previous", "candidate", "margin", "decision"),
    [
        (0.90, 0.85, 0.1, VOTE),  # a small drop passes
        (0.90, 0.95, 0.1, VOTE),  # an improvement passes
        (0.90, 0.75, 0.1, FALLBACK),  # more than the margin below: no vote
        (0.5, 0.5, 0.0, VOTE),  # margin 0: only a strict drop falls back
        (0.5, 0.49, 0.0, FALLBACK),
        (1.0, 0.0, 1.0, VOTE),  # margin 1 turns the gate off
        (1.0, 0.0, 0.99, FALLBACK),
    ],
)
def test_the_decision_falls_back_only_below_the_margin(
    previous: float, candidate: float, margin: float, decision: str
) -> None:
    assert gate_decision(previous, candidate, margin) == decision


def test_the_outcome_pools_the_validators_that_carried_the_round() -> None:
    task = ClassificationTask(["benign", "attack"], 0)

    def stats(right: int, wrong: int) -> dict[str, Any]:
        confusion = np.array([[right, wrong], [0, 0]], dtype=np.int64)
        return EvalStats(confusion, {"loss": 0.0, "n": float(right + wrong)}).to_json()

    record = {
        "context": {},
        "votes": [
            {"validator": 0, "stats": stats(5, 5)},
            {"validator": 1, "stats": stats(2, 8)},
        ],
        "gate": {
            "margin": 0.1,
            "metric": "accuracy",
            "candidate": "00" * 32,
            "context": {},
            "validators": [
                {"validator": 0, "decision": FALLBACK, "previous_stats": stats(9, 1)},
                {"validator": 1, "decision": FALLBACK, "previous_stats": stats(10, 0)},
            ],
        },
    }
    assert round_outcome(task, record, [0, 1], finalised=True) == (
        True,
        fallback_reason(0.95, 0.35, 0.1),
    )
    assert fallback_reason(0.95, 0.35, 0.1) == (
        "fallback: validation accuracy fell from 0.9500 to 0.3500 (> margin 0.1)"
    )
    assert round_outcome(task, record, [0, 1], finalised=False) == (False, NO_QUORUM)
    for e in record["gate"]["validators"]:  # type: ignore[attr-defined]
        e["decision"] = VOTE
    assert round_outcome(task, record, [0, 1], finalised=True) == (False, CANDIDATE)
    evidence = gate_evidence(record["gate"], 1)  # type: ignore[arg-type]
    assert evidence is not None and evidence["previous_stats"] == stats(10, 0)
    assert gate_evidence(None, 1) is None


# ---- a run where it fires --------------------------------------------------------------------
def test_a_collapsing_candidate_falls_back_to_the_previous_model(gated: Path) -> None:
    recs = rounds(gated)
    metrics = lines(gated / "metrics.jsonl")
    assert recs[0]["gate"]["outcome"] == CANDIDATE and not metrics[0]["ledger"]["gated"]
    first = recs[0]["model"]
    for rec, m in zip(recs[1:], metrics[1:], strict=True):
        gate = rec["gate"]
        assert rec["status"] == "finalised"
        assert rec["base"] == first and rec["model"] == first  # the unchanged model, again
        assert gate["candidate"] != first
        assert (gated / "store" / f"{gate['candidate']}.safetensors").exists()
        assert gate["margin"] == 0.1 and gate["metric"] == "accuracy"
        assert gate["outcome"].startswith("fallback: validation accuracy fell from ")
        fell = [e for e in gate["validators"] if e["decision"] == FALLBACK]
        assert len(fell) >= 2  # the quorum of 3 validators
        assert all(e["candidate"] < e["previous"] - 0.1 for e in fell)
        by_validator = {v["validator"]: v for v in rec["votes"]}
        assert all(by_validator[e["validator"]]["model"] == first for e in fell)
        assert m["ledger"]["finalised"] and m["ledger"]["gated"]
    # the final model is the one round 1 adopted
    final = load_file(gated / "model.safetensors")
    adopted = decode_tensors((gated / "store" / f"{first}.safetensors").read_bytes())
    assert final.keys() == adopted.keys()
    assert all(torch.equal(final[k], adopted[k]) for k in adopted)
    report = audit_run(gated)
    assert report.ok, [c.problems for c in report.checks]
    notes = next(c for c in report.checks if c.name == "gate").notes
    assert sum("fallback: validation accuracy fell" in n for n in notes) == 2
    text = write_report(gated).read_text()
    assert "**Fallback:** in round(s) 2, 3" in text


def test_the_strategy_state_stays_when_the_round_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = FedAvgM.aggregate

    def garbage(
        self: FedAvgM,
        base: torch.Tensor,
        updates: torch.Tensor,
        weights: torch.Tensor,
        context: RoundContext | None = None,
    ) -> torch.Tensor:
        """FedAvgM, whose velocity advances, but whose round-2 model is all zeros (it
        predicts class 0 for everything)."""
        params = real(self, base, updates, weights, context)
        return params if context is None or context.round < 2 else torch.zeros_like(params)

    monkeypatch.setattr(FedAvgM, "aggregate", garbage)
    runner = prepare(tmp_path / "run", "train.rounds=2", "strategy.name=fedavgm", attack=False)
    snapshots: list[tuple[dict[str, Any], torch.Tensor, dict[str, torch.Tensor]]] = []

    class Listener:
        def on_start(self, first_round: int, last_round: int) -> None: ...

        def on_round(self, record: dict[str, Any]) -> None:
            state = {k: v.clone() for k, v in runner.sim.strategy.state_dict().items()}
            snapshots.append((record, runner.sim.global_params.clone(), state))

    runner.run(Listener())
    (first, params1, state1), (second, params2, state2) = snapshots
    assert not first["ledger"]["gated"] and second["ledger"]["gated"]
    assert torch.equal(params1, params2)
    assert state1.keys() == state2.keys() == {"velocity"}
    assert torch.equal(state1["velocity"], state2["velocity"])
    assert audit_run(tmp_path / "run").ok


def test_margin_one_turns_the_gate_off(tmp_path: Path) -> None:
    prepare(tmp_path / "run", "train.rounds=2", "ledger.gate_margin=1").run()
    second = rounds(tmp_path / "run")[1]
    metrics = lines(tmp_path / "run" / "metrics.jsonl")
    assert second["status"] == "finalised"
    assert second["model"] == second["gate"]["candidate"] != second["base"]  # the bad model
    assert second["gate"]["outcome"] == CANDIDATE
    assert all(e["decision"] == VOTE for e in second["gate"]["validators"])
    assert any(e["candidate"] < e["previous"] - 0.1 for e in second["gate"]["validators"])
    assert not metrics[1]["ledger"]["gated"]
    assert metrics[1]["accuracy"] < metrics[0]["accuracy"] - 0.1
    assert audit_run(tmp_path / "run").ok


def test_an_enclave_round_falls_back_too(tmp_path: Path) -> None:
    runner = prepare(tmp_path / "run", "train.rounds=2", "security.secure_aggregation=enclave")
    assert isinstance(runner.sim.driver, LedgerProtocol)
    runner.run()
    first, second = rounds(tmp_path / "run")
    assert second["model"] == second["base"] == first["model"] != second["gate"]["candidate"]
    assert second["gate"]["outcome"].startswith("fallback")
    report = audit_run(tmp_path / "run")
    assert report.ok, [c.problems for c in report.checks]
    secure = next(c for c in report.checks if c.name == "secure")
    assert any("gate refused the enclave's output" in n for n in secure.notes)


# ---- tampering with a recorded decision ------------------------------------------------------
def _edit_round(r: int, change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def tamper(d: Path) -> None:
        path = d / "ledger" / "rounds.jsonl"
        recs = rounds(d)
        change(recs[r - 1])
        path.write_text("".join(json.dumps(rec) + "\n" for rec in recs))

    return tamper


def _fallback_entry(rec: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in rec["gate"]["validators"] if e["decision"] == FALLBACK)


def _hide_decision(rec: dict[str, Any]) -> None:
    _fallback_entry(rec)["decision"] = VOTE


def _raise_candidate_score(rec: dict[str, Any]) -> None:
    _fallback_entry(rec)["candidate"] = 0.99


def _edit_previous_stats(rec: dict[str, Any]) -> None:
    confusion = _fallback_entry(rec)["previous_stats"]["confusion"]
    confusion[0][1], confusion[0][0] = confusion[0][0], confusion[0][1]


def _edit_outcome(rec: dict[str, Any]) -> None:
    rec["gate"]["outcome"] = CANDIDATE


def _edit_margin(rec: dict[str, Any]) -> None:
    rec["gate"]["margin"] = 0.5


def _drop_gate(rec: dict[str, Any]) -> None:
    del rec["gate"]


def _ungate_metrics(d: Path) -> None:
    path = d / "metrics.jsonl"
    recs = lines(path)
    recs[1]["ledger"]["gated"] = False
    path.write_text("".join(json.dumps(rec) + "\n" for rec in recs))


@pytest.mark.parametrize(
    ("tamper", "check", "says"),
    [
        (_edit_round(2, _hide_decision), "gate", "round 2: validator-"),
        (_edit_round(2, _hide_decision), "votes", "round 2: "),
        (_edit_round(2, _raise_candidate_score), "gate", "candidate score 0.99"),
        (_edit_round(2, _edit_previous_stats), "gate", "round 2: validator-"),
        (_edit_round(2, _edit_previous_stats), "votes", "does not match the metrics digest"),
        (_edit_round(3, _edit_outcome), "gate", "round 3: gate outcome 'candidate'"),
        (_edit_round(2, _edit_margin), "gate", "round 2: gate margin 0.5"),
        (_edit_round(2, _drop_gate), "gate", "round 2: ledger/rounds.jsonl records no gate"),
        (_edit_round(2, _drop_gate), "votes", "round 2: "),
        (_ungate_metrics, "metrics", "(round 2): ledger.gated is False"),
    ],
    ids=[
        "decision",
        "decision-digest",
        "score",
        "previous-stats",
        "previous-stats-digest",
        "outcome",
        "margin",
        "dropped",
        "dropped-digest",
        "metrics-gated",
    ],
)
def test_editing_a_gate_decision_fails_the_audit_naming_the_round(
    copy: Path, tamper: Callable[[Path], None], check: str, says: str
) -> None:
    tamper(copy)
    failed = failures(copy)
    assert check in failed, failed
    assert any(says in p for p in failed[check]), failed[check]
