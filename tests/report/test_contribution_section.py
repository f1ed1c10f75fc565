"""The report's "Contributions" section and its plot, from hand-written run files and a
small real run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.image import imread

from fedledger.assemble import prepare_run
from fedledger.config import load_config
from fedledger.report import plot_contributions, write_report
from tests.conftest import make_dataset
from tests.report.sections import section, table_rows
from tests.report.test_report_run_folder import make_run

SECTION = "## Contributions"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Per-round scores of devices 0..3; device 3 is malicious in ``_devices``.
ROUNDS = [
    {"0": 0.10, "1": 0.30, "2": 0.20, "3": -0.10},
    {"0": 0.10, "1": 0.20, "2": 0.05, "3": -0.20},
]  # totals: 0 -> 0.20, 1 -> 0.50, 2 -> 0.25, 3 -> -0.30


def _devices(n: int, bad: set[int]) -> list[dict[str, Any]]:
    return [
        {
            "device": f"dev-{i:03d}",
            "cluster": "default",
            "n_samples": 100 + i,
            "role": "malicious" if i in bad else "honest",
            **({"attack": "free_rider"} if i in bad else {}),
        }
        for i in range(n)
    ]


def _run(
    root: Path,
    rounds: list[dict[str, Any]],
    devices: list[dict[str, Any]] | None = None,
    summary: dict[str, Any] | None = None,
    method: str = "gtg",
) -> Path:
    """A run folder whose lines have ``contribution`` entries with these scores."""
    run = root / "run"
    run.mkdir(parents=True)
    records = [
        {
            "round": r,
            "accuracy": 0.5,
            "contribution": {"method": method, "scores": scores, "evaluations": 15},
        }
        for r, scores in enumerate(rounds, start=1)
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if devices is not None:
        (run / "devices.json").write_text(json.dumps({"devices": devices}))
    if summary is not None:
        (run / "summary.json").write_text(json.dumps(summary))
    write_report(run)
    return run


def _section(run: Path) -> str:
    return section(run, SECTION)


def test_devices_are_ranked_by_total_with_roles_and_rounds(tmp_path: Path) -> None:
    run = _run(tmp_path, ROUNDS, _devices(4, {3}))
    section = _section(run)
    assert table_rows(section) == [
        ["1", "dev-001", "honest", "101", "0.5000", "2"],
        ["2", "dev-002", "honest", "102", "0.2500", "2"],
        ["3", "dev-000", "honest", "100", "0.2000", "2"],
        ["4", "dev-003", "malicious (free_rider)", "103", "-0.3000", "2"],
    ]
    assert "with `gtg` (GTG-Shapley's estimate of its Shapley value" in section
    assert "summed over 2 rounds (summed from `metrics.jsonl`)" in section
    assert "this took 30 model evaluations in total." in section


def test_honest_and_malicious_means_are_compared(tmp_path: Path) -> None:
    section = _section(_run(tmp_path, ROUNDS, _devices(4, {3})))
    assert (
        "Mean total contribution: honest devices **0.3167** (3 devices), "
        "malicious devices **-0.3000** (1 device)."
    ) in section


def test_all_honest_or_no_devices_json_has_no_comparison(tmp_path: Path) -> None:
    honest = _section(_run(tmp_path / "a", ROUNDS, _devices(4, set())))
    assert "Mean total contribution" not in honest
    bare = _section(_run(tmp_path / "b", ROUNDS))
    assert "Mean total contribution" not in bare
    header = next(line for line in bare.splitlines() if line.startswith("| rank"))
    assert header == "| rank | device | samples | total | rounds |"
    assert table_rows(bare)[0] == ["1", "1", "—", "0.5000", "2"]


def test_the_plot_is_linked_and_written(tmp_path: Path) -> None:
    run = _run(tmp_path, ROUNDS, _devices(4, {3}))
    text = (run / "report.md").read_text(encoding="utf-8")
    assert text.index("## Metrics per round") < text.index(SECTION) < text.index("## Per class")
    assert "](plots/contributions.png)" in _section(run)
    png = (run / "plots" / "contributions.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 2_000


def test_no_contribution_entries_no_section_and_no_plot(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    text = write_report(run).read_text(encoding="utf-8")
    assert SECTION not in text
    assert "Contribution" not in text
    assert not (run / "plots" / "contributions.png").exists()


def test_totals_come_from_the_summary_when_it_has_them(tmp_path: Path) -> None:
    summary = {
        "rounds": 2,
        "contributions": {
            "method": "shapley",
            "totals": {"0": 0.9, "1": 0.5, "2": "n/a", "3": -0.3},
            "evaluations": 32,
        },
    }
    section = _section(_run(tmp_path, ROUNDS, _devices(4, {3}), summary))
    assert [row[1] for row in table_rows(section)] == ["dev-000", "dev-001", "dev-003"]
    assert table_rows(section)[0][4] == "0.9000"
    assert "with `shapley` (its exact Shapley value" in section
    assert "summed from" not in section
    assert "this took 32 model evaluations in total." in section


def test_malformed_scores_are_skipped(tmp_path: Path) -> None:
    rounds: list[dict[str, Any]] = [
        {"0": 0.4, "1": "high", "x": 9.0, "2": None},
        {"0": 0.1, "1": 0.2, "2": True, "3": float("nan")},
    ]
    run = _run(tmp_path, rounds, _devices(4, set()))
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines.append(json.dumps({"round": 3, "contribution": "broken"}))
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    section = _section(Path(write_report(run)).parent)
    assert table_rows(section) == [
        ["1", "dev-000", "honest", "100", "0.5000", "2"],
        ["2", "dev-001", "honest", "101", "0.2000", "1"],
    ]


def test_more_than_15_devices_shows_top_10_and_bottom_5(tmp_path: Path) -> None:
    scores = {str(d): float(d) for d in range(20)}  # device 19 is highest
    section = _section(_run(tmp_path, [scores], _devices(20, {0})))
    assert "(the top 10 and bottom 5 of 20; 5 left out)" in section
    rows = table_rows(section)
    assert [r[0] for r in rows] == [*map(str, range(1, 11)), "…", *map(str, range(16, 21))]
    assert rows[0][1] == "dev-019" and rows[-1][1] == "dev-000"
    assert rows[10][1] == "5 more"


def _red_pixels(path: Path) -> int:
    pixels = imread(path)[..., :3]
    red = (pixels[..., 0] > 0.7) & (pixels[..., 1] < 0.4) & (pixels[..., 2] < 0.4)
    return int(np.count_nonzero(red))


def test_plot_colours_malicious_devices_only_when_there_are_some(tmp_path: Path) -> None:
    records = [
        {"round": r, "contribution": {"method": "loo", "scores": s}}
        for r, s in enumerate(ROUNDS, start=1)
    ]
    attacked = plot_contributions(records, _devices(4, {3}), tmp_path / "a.png")
    honest = plot_contributions(records, _devices(4, set()), tmp_path / "h.png")
    bare = plot_contributions(records, [], tmp_path / "n.png")
    assert _red_pixels(attacked) > 100
    assert _red_pixels(honest) == 0 and _red_pixels(bare) == 0
    again = plot_contributions(records, _devices(4, {3}), tmp_path / "b.png")
    assert again.read_bytes() == attacked.read_bytes()


def test_plot_without_scored_rounds_still_writes_a_png(tmp_path: Path) -> None:
    path = plot_contributions([{"round": 1}], [], tmp_path / "nested" / "c.png")
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_a_real_run_reports_its_contributions(tmp_path: Path) -> None:
    """The engine's ``contribution`` entries and summary totals end up in the section."""
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
    contributions = json.loads((run / "summary.json").read_text())["contributions"]
    section = _section(run)
    assert "with `loo` (its leave-one-out value" in section
    assert f"this took {contributions['evaluations']} model evaluations in total." in section
    totals = sorted(contributions["totals"].values(), reverse=True)
    assert [row[4] for row in table_rows(section)] == [f"{t:.4f}" for t in totals]
    assert (run / "plots" / "contributions.png").read_bytes().startswith(PNG_MAGIC)
