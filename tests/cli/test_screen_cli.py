"""`fedledger run` shows what the default anomaly screen flagged and found."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fedledger.cli import build_app

SMALL = ["--set", "train.rounds=2", "--set", "data.clients=10", "--set", "ledger.backend=none"]


def test_the_run_prints_flagged_devices_and_the_detection_summary(tmp_path: Path) -> None:
    attack = ["--set", "attack.name=sign_flip", "--set", "attack.fraction=0.3"]
    result = CliRunner().invoke(build_app(), ["run", *SMALL, *attack, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    for rec in lines:
        screen = rec["screen"]
        assert f"flagged: {len(screen['flagged'])} ({screen['tp']} malicious)" in result.output
    det = json.loads((tmp_path / "summary.json").read_text())["detection"]
    found = f"screen found {det['tp']} of {det['tp'] + det['fn']} malicious devices"
    assert found in result.output and f"F1 {det['f1']:.3f}" in result.output


def test_a_run_without_screening_prints_no_flags(tmp_path: Path) -> None:
    args = ["run", *SMALL, "--set", "strategy.name=fedavg", "--out", str(tmp_path)]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    assert "flagged" not in result.output and "malicious devices" not in result.output
