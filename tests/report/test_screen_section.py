"""The report's "Screening and detection" section and its plot, from small real runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from fedledger.assemble import prepare_run
from fedledger.config import load_config
from fedledger.report import plot_screen, write_report
from tests.conftest import make_dataset

BASE = [
    "ledger.backend=none",
    "train.rounds=3",
    "train.lr=0.1",
    "train.batch_size=8",
    "model.hidden=[16]",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SECTION = "## Screening and detection"


def _run(folder: Path, overrides: list[str]) -> Path:
    """A real 3-round run on a small generated dataset, with its report written."""
    torch.set_num_threads(1)
    cfg = load_config(None, [*BASE, *overrides])
    runner, _ = prepare_run(cfg, folder, data=make_dataset(n_clients=10, n_classes=3))
    runner.run()
    write_report(folder)
    return folder


@pytest.fixture(scope="module")
def screened(tmp_path_factory: pytest.TempPathFactory) -> Path:
    over = ["strategy.name=screen", "attack.name=sign_flip", "attack.fraction=0.3"]
    return _run(tmp_path_factory.mktemp("screen") / "run", over)


@pytest.fixture(scope="module")
def backdoored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    over = ["strategy.name=krum", "attack.name=backdoor", "attack.fraction=0.3"]
    return _run(tmp_path_factory.mktemp("krum") / "run", over)


def _files(run: Path) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((run / "summary.json").read_text())
    devices = json.loads((run / "devices.json").read_text())["devices"]
    return records, summary, devices


def _section(run: Path) -> str:
    text = (run / "report.md").read_text(encoding="utf-8")
    assert text.count(SECTION) == 1
    return text.split(SECTION, 1)[1].split("\n## ", 1)[0]


def test_screening_gets_a_section_and_a_plot(screened: Path) -> None:
    text = (screened / "report.md").read_text(encoding="utf-8")
    assert text.index("## Metrics per round") < text.index(SECTION) < text.index("## Per class")
    assert "](plots/screen.png)" in _section(screened)
    png = (screened / "plots" / "screen.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 2_000


def test_the_section_numbers_match_the_run_files(screened: Path) -> None:
    records, summary, devices = _files(screened)
    section = _section(screened)
    flags = [r["screen"]["flagged"] for r in records]
    ever = {d for f in flags for d in f}
    bad = sum(devices[d]["role"] == "malicious" for d in ever)
    assert (
        f"The `screen` strategy flagged {sum(map(len, flags))} of "
        f"{sum(r['clients'] for r in records)} device-rounds in 3 rounds; {len(ever)} distinct "
        f"devices were flagged at least once ({bad} malicious, {len(ever) - bad} honest)."
    ) in section
    det = summary["detection"]
    assert f"| precision | {det['precision']:.4f} |" in section
    assert f"| recall | {det['recall']:.4f} |" in section
    assert f"| F1 | {det['f1']:.4f} |" in section
    malicious = sum(d["role"] == "malicious" for d in devices)
    assert det["tp"] + det["fn"] == malicious  # every device takes part in every round here
    assert f"| malicious devices detected | {det['tp']} / {malicious}" in section
    assert f"| honest devices detected (false positives) | {det['fp']}" in section
    assert "Backdoor" not in section


def test_a_backdoor_run_reports_its_final_success_and_names_false_positives(
    backdoored: Path,
) -> None:
    records, summary, devices = _files(backdoored)
    section = _section(backdoored)
    assert "The `krum` strategy flagged" in section
    assert f"**{records[-1]['backdoor_success']:.4f}** in round 3, the final round" in section
    det = summary["detection"]
    wrong = [devices[d]["device"] for d in det["detected"] if devices[d]["role"] == "honest"]
    assert len(wrong) == det["fp"] > 0  # krum keeps one update: it flags honest devices too
    shown = ", ".join(wrong[:5]) + (f", +{len(wrong) - 5} more" if len(wrong) > 5 else "")
    assert f"| honest devices detected (false positives) | {det['fp']} ({shown}) |" in section
    assert (backdoored / "plots" / "screen.png").read_bytes().startswith(PNG_MAGIC)


def test_a_plain_fedavg_run_has_no_screening_section(tmp_path: Path) -> None:
    run = _run(tmp_path / "run", ["strategy.name=fedavg", "train.rounds=2"])
    records, _, _ = _files(run)
    assert not any("screen" in r for r in records)
    assert SECTION not in (run / "report.md").read_text(encoding="utf-8")
    assert not (run / "plots" / "screen.png").exists()


# ---- from hand-written run files --------------------------------------------------------


def _devices(n: int, bad: set[int]) -> list[dict[str, Any]]:
    return [
        {"device": f"dev-{i:03d}", "role": "malicious" if i in bad else "honest"} for i in range(n)
    ]


def test_flags_before_the_attack_are_split_by_role_and_the_run_is_unfinished(
    tmp_path: Path,
) -> None:
    """Round 1 is screened before the attack starts (no detection counts); round 2 is not
    finished into a summary yet."""
    run = tmp_path / "run"
    run.mkdir()
    records = [
        {"round": 1, "clients": 4, "screen": {"flagged": [0, 3]}},
        {
            "round": 2,
            "clients": 4,
            "screen": {"flagged": [3], "tp": 1, "fp": 0, "fn": 1, "recall": 0.5},
            "backdoor_success": 0.25,
        },
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    devices = _devices(4, {2, 3})
    (run / "devices.json").write_text(json.dumps({"devices": devices}))
    write_report(run)
    section = _section(run)
    assert (
        "The strategy flagged 3 of 8 device-rounds in 2 rounds; 2 distinct devices were "
        "flagged at least once (1 malicious, 1 honest)."
    ) in section
    assert "The run-level detection is written when the run finishes." in section
    assert "**0.2500** in round 2, the latest round" in section


@pytest.mark.parametrize("n_rounds", [0, 1, 5, 120])
def test_plot_screen_writes_png(tmp_path: Path, n_rounds: int) -> None:
    records = [
        {
            "round": r,
            "screen": {"flagged": [0, r % 7], "tp": 1, "recall": 0.5 if r % 2 else 1.0},
            **({"backdoor_success": 0.1 * (r % 10)} if r > 2 else {}),
        }
        for r in range(1, n_rounds + 1)
    ]
    path = tmp_path / "nested" / "screen.png"
    assert plot_screen(records, _devices(8, {0}), path) == path
    assert path.read_bytes().startswith(PNG_MAGIC) and len(path.read_bytes()) > 2_000


def test_plot_screen_without_roles_or_attack_and_is_deterministic(tmp_path: Path) -> None:
    records: list[dict[str, Any]] = [
        {"round": 1, "screen": {"flagged": [1, 2]}},
        {"round": 2, "accuracy": 0.5},  # not screened: left out
        {"round": 3, "screen": {"flagged": []}},
    ]
    first = plot_screen(records, [], tmp_path / "a.png").read_bytes()
    assert first.startswith(PNG_MAGIC)
    assert plot_screen(records, [], tmp_path / "b.png").read_bytes() == first


def test_the_per_round_table_shows_backdoor_success_without_screening(tmp_path: Path) -> None:
    over = ["ledger.backend=none", "strategy.name=fedavg", "train.rounds=2", "model.hidden=[16]"]
    cfg = load_config(None, [*over, "attack.name=backdoor", "attack.fraction=0.3"])
    runner, _ = prepare_run(cfg, tmp_path / "run", data=make_dataset(n_clients=6, n_classes=3))
    runner.run()
    text = write_report(tmp_path / "run").read_text()
    section = text[text.index("## Metrics per round") :].split("\n## ")[0]
    header = next(line for line in section.splitlines() if line.startswith("| round"))
    assert "backdoor success" in header
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    for rec in records:
        row = next(x for x in section.splitlines() if x.startswith(f"| {rec['round']} |"))
        assert f"{rec['backdoor_success']:.4f}" in row
