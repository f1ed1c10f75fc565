"""The report's "Rewards" section and its plot, from hand-written run files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.image import imread

from fedledger.report import write_report
from fedledger.report._rewards import read_rewards, rewards_section
from fedledger.report.rewards_plot import plot_rewards
from tests.report.sections import section, table_rows
from tests.report.test_report_run_folder import make_run

SECTION = "## Rewards"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Per-round ``rewards`` entries of devices 0..3; devices 2 and 3 are malicious in ``_devices``.
ROUNDS: list[dict[str, Any]] = [
    {"paid": {"0": 300, "1": 500, "3": 200}, "free_riders": {"2": "zero"}, "excluded": []},
    {"paid": {"0": 400, "1": 600}, "free_riders": {"2": "stale"}, "excluded": [2]},
]  # balances: 0 -> 700, 1 -> 1100, 2 -> 0, 3 -> 200; 2000 tokens in all
SUMMARY = {
    "pool": 1000,
    "paid": 2000,
    "balances": {"0": 700, "1": 1100, "2": 0, "3": 200},
    "stakes": {"0": 100, "1": 100, "2": 80, "3": 100},
    "excluded": [2],
    "free_rider_rounds": {"2": 2},
    "malicious_share": 0.1,
    "free_rider_detection": {"tp": 8, "fp": 1, "fn": 2, "precision": 0.8889, "recall": 0.8},
}


def _devices(n: int, bad: set[int]) -> list[dict[str, Any]]:
    return [
        {
            "device": f"dev-{i:03d}",
            "n_samples": 100 + i,
            "role": "malicious" if i in bad else "honest",
            **({"attack": "free_rider"} if i in bad else {}),
        }
        for i in range(n)
    ]


def _records(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"round": r, "accuracy": 0.5, "rewards": {"total": 0, "penalties": {}, **entry}}
        for r, entry in enumerate(rounds, start=1)
    ]


def _run(
    root: Path,
    rounds: list[dict[str, Any]],
    devices: list[dict[str, Any]] | None = None,
    summary: dict[str, Any] | None = None,
) -> Path:
    """A run folder whose lines have these ``rewards`` entries, with its report written."""
    run = root / "run"
    run.mkdir(parents=True)
    lines = [json.dumps(r) + "\n" for r in _records(rounds)]
    (run / "metrics.jsonl").write_text("".join(lines))
    if devices is not None:
        (run / "devices.json").write_text(json.dumps({"devices": devices}))
    if summary is not None:
        (run / "summary.json").write_text(json.dumps({"rounds": len(rounds), "rewards": summary}))
    write_report(run)
    return run


def _section(run: Path) -> str:
    return section(run, SECTION)


def test_no_rewards_entries_no_section_and_no_plot(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    text = write_report(run).read_text(encoding="utf-8")
    assert SECTION not in text
    assert not (run / "plots" / "rewards.png").exists()
    assert rewards_section([{"round": 1, "rewards": "broken"}], {}, [], None) == []


def test_totals_and_ranking_are_summed_from_the_rounds(tmp_path: Path) -> None:
    section = _section(_run(tmp_path, ROUNDS, _devices(4, set())))
    assert (
        "Devices were paid **2000 tokens** over 2 rounds (summed from `metrics.jsonl`); "
        "3 of 4 devices received tokens."
    ) in section
    header = next(line for line in section.splitlines() if line.startswith("| rank"))
    assert header == "| rank | device | role | samples | balance | rounds free riding | excluded |"
    assert table_rows(section) == [
        ["1", "dev-001", "honest", "101", "1100", "0", ""],
        ["2", "dev-000", "honest", "100", "700", "0", ""],
        ["3", "dev-003", "honest", "103", "200", "0", ""],
        ["4", "dev-002", "honest", "102", "0", "2", "yes"],
    ]
    assert "malicious" not in section and "detection" not in section


def test_totals_stakes_and_exclusions_come_from_the_summary(tmp_path: Path) -> None:
    summary = {**SUMMARY, "paid": 2500, "balances": {"0": 2000, "1": 500, "x": 9, "3": "n/a"}}
    section = _section(_run(tmp_path, ROUNDS, _devices(4, {2, 3}), summary))
    assert "Devices were paid **2500 tokens** over 2 rounds (a pool of 1000 tokens" in section
    assert "summed from" not in section
    assert "; 2 of 4 devices received tokens." in section
    assert table_rows(section) == [
        ["1", "dev-000", "honest", "100", "2000", "100", "0", ""],
        ["2", "dev-001", "honest", "101", "500", "100", "0", ""],
        ["3", "dev-002", "malicious (free_rider)", "102", "0", "80", "2", "yes"],
        ["4", "dev-003", "malicious (free_rider)", "103", "0", "100", "0", ""],
    ]


def test_malicious_share_is_compared_with_their_share_of_devices(tmp_path: Path) -> None:
    worked_out = _section(_run(tmp_path / "a", ROUNDS, _devices(4, {2, 3})))
    expected = (
        "The 2 malicious devices (50.0% of the 4 devices) received **{}** of the tokens paid."
    )
    assert expected.format("10.0%") in worked_out
    recorded = _section(_run(tmp_path / "b", ROUNDS, _devices(4, {3}), SUMMARY))
    assert (
        "The 1 malicious device (25.0% of the 4 devices) received **10.0%** of the tokens paid."
    ) in recorded
    bare = _section(_run(tmp_path / "c", ROUNDS))
    assert "malicious" not in bare
    assert table_rows(bare)[0] == ["1", "1", "—", "1100", "0", ""]


def test_detection_is_summed_from_the_rounds_or_read_from_the_summary(tmp_path: Path) -> None:
    rounds = [
        {**ROUNDS[0], "detection": {"tp": 1, "fp": 1, "fn": 0}},
        {**ROUNDS[1], "detection": {"tp": 1, "fp": 0, "fn": 2}},
    ]
    summed = _section(_run(tmp_path / "a", rounds, _devices(4, {2})))
    assert (
        "Free-rider detection over device-rounds: precision **0.6667**, recall **0.5000**, "
        "F1 **0.5714** (2 caught, 1 false alarm, 2 missed)."
    ) in summed
    recorded = _section(_run(tmp_path / "b", rounds, _devices(4, {2}), SUMMARY))
    # the summary's F1 is missing: the rates are worked out from its counts
    assert "precision **0.8889**, recall **0.8000**, F1 **0.8421** (8 caught, 1 false" in recorded


def test_more_than_15_devices_shows_top_10_and_bottom_5(tmp_path: Path) -> None:
    paid = {str(d): 10 * d for d in range(20)}  # device 19 is paid most
    section = _section(_run(tmp_path, [{"paid": paid}], _devices(20, {0})))
    assert "(the top 10 and bottom 5 of 20; 5 left out)" in section
    rows = table_rows(section)
    assert [r[0] for r in rows] == [*map(str, range(1, 11)), "…", *map(str, range(16, 21))]
    assert rows[0][1] == "dev-019" and rows[-1][1] == "dev-000"
    assert rows[10][1] == "5 more"


def test_malformed_values_are_skipped() -> None:
    records: list[dict[str, Any]] = [
        {"round": 1, "rewards": {"paid": {"0": 10, "1": "lots", "x": 5, "2": None}}},
        {"round": 2, "rewards": {"paid": [1, 2], "free_riders": {"1": 3, "2": "noise", "y": 1}}},
        {"round": 3, "rewards": {"paid": {"1": 4.5}, "excluded": ["1", True, 2], "detection": 7}},
        {"round": 4, "rewards": None},
    ]
    found = read_rewards(records, {"rewards": {"pool": "big", "stakes": "none"}})
    assert found is not None
    assert found.balances == {0: 10.0, 1: 4.5}
    assert found.free_rider_rounds == {2: 1}
    assert found.excluded == {2}
    assert found.pool is None and not found.stakes and found.detection is None
    section = "\n".join(rewards_section(records, {}, [], None))
    assert "Devices were paid **14.50 tokens** over 3 rounds" in section


def test_unsettled_rounds_are_not_counted(tmp_path: Path) -> None:
    rounds = [
        {**ROUNDS[0], "settled": True},
        {"paid": {"0": 999}, "excluded": [0], "settled": False},
        ROUNDS[1],  # no ``settled``: a run without a ledger, paid
    ]
    section = _section(_run(tmp_path, rounds, _devices(4, set())))
    assert (
        "Devices were paid **2000 tokens** over 3 rounds (summed from `metrics.jsonl`); "
        "3 of 4 devices received tokens; 1 round did not settle (2), so nothing was paid for it."
    ) in section
    assert table_rows(section)[1] == ["2", "dev-000", "honest", "100", "700", "0", ""]


def test_the_plot_is_linked_and_written(tmp_path: Path) -> None:
    run = _run(tmp_path, ROUNDS, _devices(4, {3}), SUMMARY)
    text = (run / "report.md").read_text(encoding="utf-8")
    assert text.index("## Metrics per round") < text.index(SECTION) < text.index("## Per class")
    assert "![Cumulative rewards per device over rounds](plots/rewards.png)" in _section(run)
    png = (run / "plots" / "rewards.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 2_000


def _red_pixels(path: Path) -> int:
    pixels = imread(path)[..., :3]
    red = (pixels[..., 0] > 0.7) & (pixels[..., 1] < 0.4) & (pixels[..., 2] < 0.4)
    return int(np.count_nonzero(red))


def test_plot_colours_malicious_devices_only_when_there_are_some(tmp_path: Path) -> None:
    records = _records([*ROUNDS, {"paid": {"0": 5}, "settled": False}])
    attacked = plot_rewards(records, _devices(4, {3}), tmp_path / "a.png")
    honest = plot_rewards(records, _devices(4, set()), tmp_path / "h.png")
    bare = plot_rewards(records, [], tmp_path / "n.png")
    assert _red_pixels(attacked) > 100
    assert _red_pixels(honest) == 0 and _red_pixels(bare) == 0
    again = plot_rewards(records, _devices(4, {3}), tmp_path / "b.png")
    assert again.read_bytes() == attacked.read_bytes()


def test_plot_without_reward_rounds_still_writes_a_png(tmp_path: Path) -> None:
    path = plot_rewards([{"round": 1}], [], tmp_path / "nested" / "r.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
