"""The report's "Contributions" section and its plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from fedledger.assemble import prepare_run
from fedledger.config import load_config
from fedledger.report import write_report
from tests.conftest import make_dataset

SECTION = "## Contributions"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write(
    folder: Path,
    records: list[dict[str, Any]],
    summary: dict[str, Any] | None,
    devices: list[dict[str, Any]] | None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r) + "\n" for r in records)
    (folder / "metrics.jsonl").write_text(lines)
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary))
    if devices is not None:
        (folder / "devices.json").write_text(json.dumps({"devices": devices}))
    write_report(folder)
    return folder


def _section(run: Path) -> str:
    text = (run / "report.md").read_text(encoding="utf-8")
    assert text.count(SECTION) == 1
    return text.split(SECTION, 1)[1].split("\n## ", 1)[0]


def _rounds(scores: list[dict[str, float]], method: str = "gtg") -> list[dict[str, Any]]:
    return [
        {
            "round": r,
            "accuracy": 0.5,
            "contribution": {"method": method, "scores": s, "evaluations": 10},
        }
        for r, s in enumerate(scores, start=1)
    ]


DEVICES = [
    {"device": "dev-000", "n_samples": 100, "role": "honest"},
    {"device": "dev-001", "n_samples": 50, "role": "malicious", "attack": "free_rider"},
    {"device": "dev-002", "n_samples": 80, "role": "honest"},
]


def test_devices_are_ranked_by_total_and_honest_and_malicious_compared(tmp_path: Path) -> None:
    records = _rounds([{"0": 0.1, "1": -0.2, "2": 0.3}, {"0": 0.1, "1": 0.05, "2": 0.0}])
    summary = {
        "contributions": {
            "method": "gtg",
            "totals": {"0": 0.2, "1": -0.15, "2": 0.3},
            "evaluations": 20,
        }
    }
    run = _write(tmp_path / "run", records, summary, DEVICES)
    section = _section(run)
    assert "`gtg`" in section and "20 model evaluations" in section
    rows = [line for line in section.splitlines() if line.startswith("| ") and "dev-" in line]
    assert [r.split("|")[2].strip() for r in rows] == ["dev-002", "dev-000", "dev-001"]
    assert "malicious (free_rider)" in rows[2]
    assert "honest devices **0.2500** (2 devices)" in section
    assert "malicious devices **-0.1500** (1 device)" in section
    png = run / "plots" / "contributions.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert "plots/contributions.png" in section


def test_totals_are_summed_from_the_rounds_without_a_summary(tmp_path: Path) -> None:
    records = _rounds([{"0": 0.5, "1": "bad", "2": 0.1}, {"0": -0.2, "2": 0.4}], "loo")
    run = _write(tmp_path / "run", records, None, None)
    section = _section(run)
    assert "summed from `metrics.jsonl`" in section
    rows = [
        line for line in section.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")
    ]
    assert "0.5000" in rows[0] and "0.3000" in rows[1]  # device 2: 0.5, device 0: 0.3
    assert "Mean total contribution" not in section  # no roles, nothing to compare
    assert (run / "plots" / "contributions.png").is_file()


def test_long_runs_list_the_top_and_bottom_devices(tmp_path: Path) -> None:
    scores = {str(d): float(d) for d in range(20)}
    run = _write(tmp_path / "run", _rounds([scores]), None, None)
    section = _section(run)
    assert "the top 10 and bottom 5 of 20; 5 left out" in section
    assert "| … | 5 more |" in section


def test_a_run_without_incentives_has_no_section(tmp_path: Path) -> None:
    run = _write(tmp_path / "run", [{"round": 1, "accuracy": 0.5}], None, None)
    assert SECTION not in (run / "report.md").read_text(encoding="utf-8")
    assert not (run / "plots" / "contributions.png").exists()


def test_a_real_run_reports_its_contributions(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    over = [
        "ledger.backend=none",
        "train.rounds=2",
        "model.hidden=[16]",
        "incentives.method=loo",
        "strategy.name=fedavg",
    ]
    runner, _ = prepare_run(
        load_config(None, over), tmp_path / "run", data=make_dataset(n_clients=6, n_classes=3)
    )
    runner.run()
    run = write_report(tmp_path / "run").parent
    summary = json.loads((run / "summary.json").read_text())
    section = _section(run)
    assert "`loo`" in section and f"{summary['contributions']['evaluations']} model" in section
    best = max(summary["contributions"]["totals"].items(), key=lambda kv: kv[1])
    first_row = next(line for line in section.splitlines() if line.startswith("| 1 "))
    assert f"{best[1]:.4f}" in first_row
