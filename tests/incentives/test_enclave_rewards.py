"""Contributions scored inside the enclave: the scores, free riders and rewards are the ones the
plain simulation computes from the same updates, the transcript signs them, the host refuses
scores that do not fit the round, and the audit holds the round's rewards to the transcript."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from torch import nn

from fedledger.assemble import build_simulation, prepare_run
from fedledger.audit import audit_run
from fedledger.config import load_config
from fedledger.errors import AttestationError, ConfigError, SecureAggregationError
from fedledger.fl.enclave.service import EnclaveService, enclave_config
from fedledger.fl.secure.base import Submission
from fedledger.fl.secure.enclave_mode import _contributions
from fedledger.security.enclave.transcript import Transcript
from tests.conftest import make_dataset

FAST = ["train.lr=0.1", "train.batch_size=8", "model.hidden=[16]"]
RIDERS = ["attack.name=free_rider", "attack.fraction=0.34"]


def simulate(mode: str, extra: list[str], rounds: int) -> list[dict[str, Any]]:
    cfg = load_config(
        None, [*FAST, "ledger.backend=none", f"security.secure_aggregation={mode}", *extra]
    )
    sim = build_simulation(cfg, data=make_dataset(n_clients=6))
    try:
        return [sim.run_round(r).metrics for r in range(1, rounds + 1)]
    finally:
        sim.close()


@pytest.mark.parametrize("rider", ["stale", "random"])
def test_the_enclave_scores_and_rewards_as_the_plain_simulation(rider: str) -> None:
    extra = [*RIDERS, f"attack.mode={rider}"]
    plain, sealed = simulate("none", extra, 3), simulate("enclave", extra, 3)
    for p, s in zip(plain, sealed, strict=True):
        assert s["contribution"]["method"] == "gtg"
        assert s["contribution"] == p["contribution"]
        assert s["rewards"] == p["rewards"]
    # found inside, stale ones by the last global step the host sent, and excluded
    kind = {"stale": "stale", "random": "noise"}[rider]
    assert sealed[1]["rewards"]["free_riders"] == {"4": kind, "5": kind}
    assert sealed[1]["rewards"]["excluded"] == [4, 5]


def test_a_module_model_cannot_be_scored_inside_the_enclave() -> None:
    cfg = load_config(
        None,
        [
            *FAST,
            "ledger.backend=none",
            "security.secure_aggregation=enclave",
            "incentives.method=gtg",
        ],
    )
    model = nn.Sequential(nn.Linear(10, 3))
    with pytest.raises(ConfigError, match=r"incentives\.method.*rebuilds"):
        build_simulation(cfg, model=model, data=make_dataset(n_clients=6))


def test_an_enclave_without_a_model_refuses_to_score() -> None:
    cfg = load_config(None, [])
    config = enclave_config(
        "enclave",
        10,
        cfg.strategy.model_dump(),
        cfg.security.model_dump(),
        incentives={"method": "gtg", "seed": 0},
    )
    with pytest.raises(SecureAggregationError, match="no model"):
        EnclaveService(config, 0)


def transcript(**fields: Any) -> Transcript:
    base: dict[str, Any] = {
        "round": 1,
        "mode": "enclave",
        "measurement": bytes(32),
        "strategy": "fedavg",
        "base": bytes(32),
        "inputs": ((b"a" * 32, 5), (b"b" * 32, 5), (b"c" * 32, 5)),
        "accepted": (0, 1, 2),
        "rejected": (),
        "output": bytes(32),
        "contribution": "gtg",
        "scores": ((0, 0.5), (1, 0.25)),
        "free_riders": ((1, "zero"),),
    }
    base.update(fields)
    return Transcript(**base)


# input 2 is a sealed Sybil clone (device -1): never scored
SUBMISSIONS = [Submission(4, b"a", 5), Submission(7, b"b", 5), Submission(-1, b"c", 5)]


def test_the_host_takes_the_transcript_s_scores_by_device() -> None:
    scores, riders = _contributions(1, transcript(), SUBMISSIONS, "gtg")
    assert scores == {4: 0.5, 7: 0.25} and riders == {7: "zero"}
    assert _contributions(
        1, transcript(contribution="none", scores=(), free_riders=()), SUBMISSIONS, "none"
    ) == (None, {})


@pytest.mark.parametrize(
    ("fields", "method", "why"),
    [
        ({"contribution": "loo"}, "gtg", "with 'loo', not 'gtg'"),
        ({"scores": ((0, 0.5),)}, "gtg", "not one for each"),
        ({"scores": ((0, 0.5), (1, 0.2), (2, 0.1))}, "gtg", "not one for each"),
        ({"accepted": (0, 2), "free_riders": ()}, "gtg", "not one for each"),
        ({"free_riders": ((2, "noise"),)}, "gtg", "not one for each"),
        ({}, "none", "unasked"),
    ],
)
def test_the_host_refuses_scores_that_do_not_fit_the_round(
    fields: dict[str, Any], method: str, why: str
) -> None:
    with pytest.raises(AttestationError, match=why):
        _contributions(1, transcript(**fields), SUBMISSIONS, method)


def test_a_transcript_refuses_non_finite_scores() -> None:
    with pytest.raises(ValueError):
        transcript(scores=((0, float("nan")), (1, 0.1))).encode()
    raw = transcript().encode().replace(b'"score":0.5', b'"score":NaN')
    with pytest.raises(AttestationError, match="malformed"):
        Transcript.decode(raw)


@pytest.fixture(scope="module")
def ledger_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enclave aggregation on the ledger with a third of the devices free riding."""
    out = tmp_path_factory.mktemp("enclave-rewards") / "run"
    cfg = load_config(
        None,
        [
            *FAST,
            *RIDERS,
            "attack.mode=random",
            "train.rounds=3",
            "security.secure_aggregation=enclave",
        ],
    )
    runner, done = prepare_run(cfg, out, resume=False, data=make_dataset(n_clients=6))
    runner.run(start_after=done)
    return out


def rounds(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "ledger" / "rounds.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()]


def tampered(
    run_dir: Path, tmp_path: Path, change: Callable[[list[dict[str, Any]]], None]
) -> dict[str, list[str]]:
    """The failed checks' problems of a copy of ``run_dir`` whose round records ``change``
    edited."""
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    rows = rounds(copy)
    change(rows)
    path = copy / "ledger" / "rounds.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {c.name: c.problems for c in audit_run(copy).checks if not c.ok}


def test_rewards_scored_in_the_enclave_are_paid_and_audit_ok(ledger_run: Path) -> None:
    report = audit_run(ledger_run)
    assert report.ok, [p for c in report.checks for p in c.problems]
    rows = rounds(ledger_run)
    for rec in rows:
        t = json.loads(bytes.fromhex(rec["secure"]["evidence"]["transcript"]))
        assert t["contribution"] == "gtg" and len(t["scores"]) == len(rec["rewards"]["scores"])
        assert rec["rewards"]["settled"]
    assert any(rec["rewards"]["free_riders"] for rec in rows)
    summary = json.loads((ledger_run / "summary.json").read_text())
    assert summary["rewards"]["malicious_share"] <= 0.05


def test_a_recorded_score_that_differs_from_the_transcript_fails_the_audit(
    ledger_run: Path, tmp_path: Path
) -> None:
    def change(rows: list[dict[str, Any]]) -> None:
        scores = rows[1]["rewards"]["scores"]
        scores[next(iter(scores))] += 0.5

    failed = tampered(ledger_run, tmp_path, change)
    assert any(
        "round 2: the enclave's transcript: its contribution scores" in p for p in failed["secure"]
    )
    assert any(
        "contribution scores are not ledger/rounds.jsonl's round 2's" in p
        for p in failed["metrics"]
    )


def test_a_free_rider_dropped_from_the_record_fails_the_audit(
    ledger_run: Path, tmp_path: Path
) -> None:
    r = next(i for i, rec in enumerate(rounds(ledger_run)) if rec["rewards"]["free_riders"])

    def change(rows: list[dict[str, Any]]) -> None:
        rows[r]["rewards"]["free_riders"] = {}

    failed = tampered(ledger_run, tmp_path, change)
    assert any(
        f"round {r + 1}: the enclave's transcript finds free riders" in p for p in failed["secure"]
    )
