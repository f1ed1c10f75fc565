"""``fedledger attack-matrix``: the grid end to end, one-line input errors, and the writers."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fedledger.cli import build_app
from fedledger.matrix import (
    CSV_COLUMNS,
    Cell,
    CellResult,
    MatrixSpec,
    matrix_csv,
    matrix_markdown,
    write_matrix,
)
from fedledger.matrix.trigger_baseline import trigger_success, with_trigger_baselines

SMALL = [
    "--set",
    "ledger.backend=none",
    "--set",
    "train.rounds=2",
    "--set",
    "data.clients=6",
]
GRID = ["--attacks", "none,sign_flip", "--defences", "fedavg,median", "--fractions", "0.3"]
PNG = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(build_app(), ["attack-matrix", *args])
    return result.exit_code, result.output


def _one_line_error(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert "Traceback" not in output
    assert len(lines) == 1, output
    return lines[0]


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_a_small_grid_writes_the_csv_the_tables_and_the_heatmap(tmp_path: Path) -> None:
    config = tmp_path / "small.toml"  # CONFIG and --set together, as for `fedledger run`
    config.write_text('[ledger]\nbackend = "none"\n\n[data]\nclients = 6\n')
    out = tmp_path / "matrix"
    code, output = invoke(
        str(config), *GRID, "--set", "train.rounds=2", "--jobs", "2", "--out", str(out)
    )
    assert code == 0, output
    rows = _rows(out / "matrix.csv")
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [(r["defence"], r["attack"], r["fraction"], r["seed"]) for r in rows] == [
        ("fedavg", "none", "0", "0"),
        ("fedavg", "sign_flip", "0.3", "0"),
        ("median", "none", "0", "0"),
        ("median", "sign_flip", "0.3", "0"),
    ]
    for row in rows:
        assert row["error"] == ""
        for key in ("accuracy", "macro_f1"):
            assert 0.0 <= float(row[key]) <= 1.0
        assert float(row["seconds"]) >= 0.0
        # no backdoor ran and neither strategy screens updates: not applicable, left empty
        assert row["backdoor_success"] == row["detection_f1"] == ""
        run = out / row["run_dir"]
        assert (run / "summary.json").is_file() and (run / "report.md").is_file()
    # every cell is a normal run folder with the cell's settings
    attacked = out / "cells" / "median__sign_flip__0.3__s0"
    resolved = (attacked / "config.toml").read_text()
    assert 'name = "median"' in resolved and "rounds = 2" in resolved
    devices = json.loads((attacked / "devices.json").read_text())["devices"]
    assert sum(d["role"] == "malicious" for d in devices) == round(0.3 * 6)
    baseline = json.loads((out / "cells" / "fedavg__none__0__s0" / "devices.json").read_text())
    assert all(d["role"] == "honest" for d in baseline["devices"])

    markdown = (out / "matrix.md").read_text()
    assert "## Final accuracy" in markdown
    assert "## Accuracy drop against the attack-free baseline" in markdown
    assert "| sign_flip@0.3 |" in markdown
    assert "Backdoor success" not in markdown and "Detection F1" not in markdown
    assert (out / "heatmap.png").read_bytes().startswith(PNG)
    # the accuracy table and the paths reach the console
    assert "| attack@fraction | fedavg | median |" in output
    assert str(out / "matrix.csv") in output and str(out / "heatmap.png") in output
    assert f"`{config}`" in markdown


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--attacks", "none,nonsense"], "'nonsense'"),
        (["--defences", "fedavg,bogus"], "'bogus'"),
        (["--fractions", "0.3,1.0"], "1.0 is outside (0, 1)"),
        (["--fractions", "0"], "0 is outside (0, 1)"),
        (["--fractions", "-0.2"], "-0.2 is outside (0, 1)"),
        (["--fractions", "abc"], "'abc' is not a number"),
        (["--attacks", " , "], "--attacks"),
        (["--defences", ""], "--defences"),
        (["--seeds", "0"], "--seeds"),
        (["--set", "strategy.name=krum"], "strategy.name"),
        (["--set", "attack.fraction=0.5"], "attack.fraction"),
        (["--set", "train.lrr=0.1"], "train.lrr"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], needle: str
) -> None:
    monkeypatch.chdir(tmp_path)  # the default --out, runs/matrix-<timestamp>, would land here
    options = dict(zip(GRID[::2], GRID[1::2], strict=True))
    extra: list[str] = []
    for key, value in zip(args[::2], args[1::2], strict=True):
        if key in options:
            options[key] = value
        else:
            extra += [key, value]
    code, output = invoke(*(item for pair in options.items() for item in pair), *extra, *SMALL)
    assert code == 2, output
    assert needle in _one_line_error(output)
    assert list(tmp_path.iterdir()) == []


def test_the_grid_runs_the_baseline_once_per_defence_and_seed() -> None:
    spec = MatrixSpec.parse(
        None,
        ["train.seed=5"],
        attacks="none,sign_flip,gaussian",
        defences="fedavg,krum",
        fractions="0.1,0.2,0.1",  # a repeated value runs once
        seeds=2,
    )
    cells = spec.cells()
    assert spec.fractions == (0.1, 0.2)
    assert len(cells) == 2 * (1 + 2 * 2) * 2
    assert {c.seed for c in cells} == {5, 6}
    assert [c for c in cells if c.defence == "krum" and c.attack == "none"] == [
        Cell("krum", "none", 0.0, 5),
        Cell("krum", "none", 0.0, 6),
    ]
    cfg = spec.config_for(Cell("krum", "gaussian", 0.2, 6))
    assert (cfg.strategy.name, cfg.attack.name, cfg.attack.fraction, cfg.train.seed) == (
        "krum",
        "gaussian",
        0.2,
        6,
    )
    assert Cell("krum", "gaussian", 0.2, 6).name == "krum__gaussian__0.2__s6"


def _hand_made() -> list[CellResult]:
    def row(defence: str, attack: str, fraction: float, seed: int, **kw: Any) -> CellResult:
        cell = Cell(defence, attack, fraction, seed)
        return CellResult(cell, run_dir=f"cells/{cell.name}", **kw)

    return [
        row("fedavg", "none", 0.0, 0, accuracy=0.9, macro_f1=0.8, seconds=1.0),
        row("fedavg", "none", 0.0, 1, accuracy=0.8, macro_f1=0.7, seconds=3.0),
        row("fedavg", "sign_flip", 0.2, 0, accuracy=0.2, macro_f1=0.1, seconds=1.0),
        row("fedavg", "sign_flip", 0.2, 1, accuracy=0.4, macro_f1=0.3, seconds=1.0),
        row("krum", "none", 0.0, 0, accuracy=0.85, macro_f1=0.8, seconds=2.0),
        row("krum", "none", 0.0, 1, accuracy=0.87, macro_f1=0.8, seconds=2.0),
        row(
            "krum",
            "sign_flip",
            0.2,
            0,
            accuracy=0.8,
            macro_f1=0.75,
            detection_precision=0.5,
            detection_recall=1.0,
            detection_f1=2 / 3,
            seconds=2.0,
        ),
        CellResult(Cell("krum", "sign_flip", 0.2, 1), error="round 2: training diverged"),
    ]


def test_markdown_aggregates_over_seeds_with_mean_and_std() -> None:
    markdown = matrix_markdown(_hand_made(), context=["Base config: the offline default."])
    sections = markdown.split("\n## ")
    accuracy = next(s for s in sections if s.startswith("Final accuracy"))
    assert "| attack@fraction | fedavg | krum |" in accuracy
    assert "| none | 0.850 ± 0.071 | 0.860 ± 0.014 |" in accuracy
    # one krum seed failed: the mean of the other, marked
    assert "| sign_flip@0.2 | 0.300 ± 0.141 | 0.800 (n=1) |" in accuracy
    drop = next(s for s in sections if s.startswith("Accuracy drop"))
    # paired by seed: fedavg (0.9 - 0.2, 0.8 - 0.4); krum only seed 0 finished
    assert "| sign_flip@0.2 | 0.550 ± 0.212 | 0.050 (n=1) |" in drop
    assert "| none |" not in drop
    detection = next(s for s in sections if s.startswith("Detection F1"))
    assert "| sign_flip@0.2 | — | 0.667 (n=1) |" in detection
    seconds = next(s for s in sections if s.startswith("Seconds"))
    assert "| none | 2.00 ± 1.41 | 2.00 ± 0.00 |" in seconds
    assert "Backdoor success" not in markdown
    failed = next(s for s in sections if s.startswith("Failed runs"))
    assert "round 2: training diverged" in failed
    assert "Base config: the offline default." in markdown


def test_markdown_with_one_seed_has_no_spread_and_a_backdoor_table() -> None:
    results = [
        CellResult(Cell("median", "none", 0.0, 0), accuracy=0.9),
        CellResult(Cell("median", "backdoor", 0.1, 0), accuracy=0.88, backdoor_success=0.25),
    ]
    markdown = matrix_markdown(results)
    assert "| none | 0.900 |" in markdown
    assert "±" not in markdown
    assert "## Backdoor success" in markdown and "| backdoor@0.1 | 0.250 |" in markdown


def test_csv_has_one_row_per_cell_with_empty_fields_where_not_applicable(
    tmp_path: Path,
) -> None:
    results = _hand_made()
    rows = list(csv.DictReader(io.StringIO(matrix_csv(results))))
    assert len(rows) == len(results)
    assert rows[0] == {
        "defence": "fedavg",
        "attack": "none",
        "fraction": "0",
        "seed": "0",
        "accuracy": "0.9",
        "macro_f1": "0.8",
        "backdoor_success": "",
        "backdoor_baseline": "",
        "detection_precision": "",
        "detection_recall": "",
        "detection_f1": "",
        "seconds": "1.0",
        "run_dir": "cells/fedavg__none__0__s0",
        "error": "",
    }
    assert rows[6]["detection_f1"] == "0.666667"
    assert rows[7]["accuracy"] == "" and rows[7]["error"] == "round 2: training diverged"
    files = write_matrix(results, tmp_path)
    assert files.csv.read_text() == matrix_csv(results)
    assert files.markdown.read_text().startswith("# Attack × defence matrix")
    assert files.heatmap.read_bytes().startswith(PNG)


def test_backdoor_cells_get_the_trigger_on_the_attack_free_model(tmp_path: Path) -> None:
    """``backdoor_baseline`` is the trigger's success on the same defence and seed's
    attack-free model, by the same measure as the run's own ``backdoor_success``."""
    out = tmp_path / "matrix"
    args = ["--attacks", "none,backdoor", "--defences", "fedavg", "--fractions", "0.3"]
    code, output = invoke(*SMALL, *args, "--jobs", "1", "--out", str(out))
    assert code == 0, output
    clean, attacked = _rows(out / "matrix.csv")
    assert clean["backdoor_baseline"] == ""  # not a backdoor cell
    spec = MatrixSpec.parse(
        None, SMALL[1::2], attacks="none,backdoor", defences="fedavg", fractions="0.3"
    )
    config = spec.configs()[Cell("fedavg", "backdoor", 0.3, 0)]
    # the measure is the run's own: on the backdoor cell's model it gives its backdoor_success
    own = trigger_success(config, out / attacked["run_dir"] / "model.safetensors")
    assert own is not None and abs(own - float(attacked["backdoor_success"])) < 1e-6
    baseline = trigger_success(config, out / clean["run_dir"] / "model.safetensors")
    assert baseline is not None and float(attacked["backdoor_baseline"]) == round(baseline, 6)
    markdown = (out / "matrix.md").read_text()
    assert "## Backdoor success on the attack-free model" in markdown
    # without the attack-free cell, or with its model gone, there is no baseline
    results = [CellResult(Cell("fedavg", "backdoor", 0.3, 0), accuracy=0.5, run_dir="x")]
    assert with_trigger_baselines(results, {}, out)[0].backdoor_baseline is None
    (out / clean["run_dir"] / "model.safetensors").unlink()
    results = [
        CellResult(Cell("fedavg", "none", 0.0, 0), accuracy=0.5, run_dir=clean["run_dir"]),
        CellResult(Cell("fedavg", "backdoor", 0.3, 0), accuracy=0.5, run_dir="x"),
    ]
    redone = with_trigger_baselines(results, spec.configs(), out)
    assert redone[1].backdoor_baseline is None and redone[1].accuracy == 0.5
