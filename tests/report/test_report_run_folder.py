"""Reading a run folder and writing its report, for finished, partial and broken runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from fedledger.errors import CheckpointError
from fedledger.report import (
    read_config,
    read_devices,
    read_metrics,
    read_summary,
    write_report,
)

CLASSES = ["benign", "dos", "probe"]
CONFIG = """\
[data]
name = "synthetic"
partition = "dirichlet"

[model]
name = "mlp"
hidden = [64, 32]

[train]
rounds = 10
lr = 0.05

[strategy]
name = "fedavg"
"""


def _record(round_: int) -> dict[str, Any]:
    accuracy = 0.80 + 0.01 * round_
    return {
        "round": round_,
        "accuracy": accuracy,
        "macro_f1": accuracy - 0.1,
        "loss": 1.0 / round_,
        "seconds": 0.25,
        "detection_rate": 0.95,
        "false_alarm_rate": 0.02,
        "per_class": {
            name: {"precision": 0.9, "recall": 0.8, "f1": 0.8471, "support": 10 * (i + 1)}
            for i, name in enumerate(CLASSES)
        },
        "confusion": [[8, 1, 1], [2, 16, 2], [3, 3, 24]],
        "clients": 20,
        "extra_key": "ignored",
    }


def make_run(root: Path, rounds: int = 10, finished: bool = True, synthetic: bool = True) -> Path:
    """A run folder as the engine writes it; ``finished=False`` stops after ``rounds``."""
    run = root / "run-1"
    run.mkdir()
    (run / "config.toml").write_text(CONFIG, encoding="utf-8")
    lines = [json.dumps(_record(r)) for r in range(1, rounds + 1)]
    (run / "metrics.jsonl").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    devices = [
        {
            "device": f"dev-{i:03d}",
            "cluster": ["camera", "plug"][i % 2],
            "n_samples": 100 * (i + 1),
            "role": "honest" if i < 4 else "poisoner",
        }
        for i in range(5)
    ]
    (run / "devices.json").write_text(json.dumps({"devices": devices}), encoding="utf-8")
    if finished:
        blob = b"not really safetensors, but bytes to hash"
        digest = hashlib.sha256(blob).hexdigest()
        (run / "model.safetensors").write_bytes(blob)
        (run / "model.sha256").write_text(f"{digest}  model.safetensors\n", encoding="utf-8")
        summary = {
            "dataset": "synthetic" if synthetic else "nsl-kdd",
            "classes": CLASSES,
            "rounds": rounds,
            "final": _record(rounds),
            "model_sha256": digest,
            "seconds_total": 12.5,
            "synthetic": synthetic,
        }
        (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return run


# ---- readers ----------------------------------------------------------------------------


def test_readers_return_what_the_engine_wrote(tmp_path: Path) -> None:
    run = make_run(tmp_path, rounds=4)
    assert [r["round"] for r in read_metrics(run)] == [1, 2, 3, 4]
    assert len(read_devices(run)) == 5
    assert read_summary(run)["classes"] == CLASSES
    assert read_config(run)["train"]["rounds"] == 10


def test_readers_skip_blank_lines_and_default_optional_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('\n{"round": 1}\n\n', encoding="utf-8")
    assert read_metrics(run) == [{"round": 1}]
    assert read_devices(run) == []
    assert read_summary(run) == {}
    assert read_config(run) == {}


def test_missing_folder_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="run folder not found") as info:
        write_report(tmp_path / "nope")
    assert "nope" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_metrics_names_the_file(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(CheckpointError, match=r"metrics\.jsonl: file not found"):
        read_metrics(run)


@pytest.mark.parametrize(
    ("line", "reason"),
    [('{"round": 2, "accuracy": 0.', "not valid JSON"), ("[1, 2]", "expected a JSON object")],
)
def test_corrupt_metrics_line_names_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    run = make_run(tmp_path, rounds=1, finished=False)
    with (run / "metrics.jsonl").open("a", encoding="utf-8") as stream:
        stream.write(line + "\n")
        stream.write('{"round": 3, "accuracy": 0.5}\n')  # the bad line is not the last one
    with pytest.raises(CheckpointError) as info:
        write_report(run)
    message = str(info.value)
    assert f"metrics.jsonl:2: {reason}" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("devices.json", "{oops", r"devices\.json: not valid JSON"),
        ("devices.json", '{"devices": 3}', r"devices\.json: 'devices' must be a list"),
        ("summary.json", "[]", r"summary\.json: expected a JSON object"),
        ("config.toml", "[data\nname=", r"config\.toml: not valid TOML"),
        ("model.sha256", "xyz  model.safetensors", r"model\.sha256: expected"),
    ],
)
def test_corrupt_optional_files_name_the_file(
    tmp_path: Path, name: str, content: str, match: str
) -> None:
    run = make_run(tmp_path)
    (run / name).write_text(content, encoding="utf-8")
    with pytest.raises(CheckpointError, match=match) as info:
        write_report(run)
    assert "\n" not in str(info.value)


# ---- report -----------------------------------------------------------------------------


def test_report_of_a_finished_run(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    report = write_report(run)
    assert report == run / "report.md"
    text = report.read_text(encoding="utf-8")
    digest = (run / "model.sha256").read_text(encoding="utf-8").split()[0]

    assert text.startswith("# Run report: run-1\n")
    assert "**Synthetic data.**" in text
    assert "| accuracy | 0.9000 |" in text  # final accuracy (round 10)
    assert "| detection rate | 0.9500 |" in text
    assert "| false alarm rate | 0.0200 |" in text
    assert "| 3 | 0.8300 | 0.7300 | 0.3333 | 0.25 |" in text  # a per-round row
    assert "| probe | 0.9000 | 0.8000 | 0.8471 | 30 |" in text  # a per-class row
    assert digest in text
    assert "model.sha256: digest matches" in text
    assert "summary.json: digest matches" in text
    assert "| `train.lr` | `0.05` |" in text
    assert "| `model.hidden` | `[64, 32]` |" in text
    assert "| camera | 2 | 1 | 3 |" in text  # devices 0, 2 honest and 4 a poisoner
    assert "min 100, median 300, max 500" in text
    assert "finished, 10 rounds" in text
    for name in ("rounds", "confusion", "devices"):
        assert f"](plots/{name}.png)" in text
        assert (run / "plots" / f"{name}.png").read_bytes().startswith(b"\x89PNG")


def test_report_of_real_data_has_no_synthetic_note(tmp_path: Path) -> None:
    text = write_report(make_run(tmp_path, synthetic=False)).read_text(encoding="utf-8")
    assert "Synthetic data" not in text
    assert "nsl-kdd" in text


def test_report_of_a_partial_run(tmp_path: Path) -> None:
    run = make_run(tmp_path, rounds=3, finished=False)
    text = write_report(run).read_text(encoding="utf-8")
    assert "unfinished: 3 of 10 rounds recorded" in text
    assert "## Latest metrics (round 3)" in text
    assert "| accuracy | 0.8300 |" in text
    assert "No `model.safetensors` yet" in text
    assert "**Synthetic data.**" in text  # from config data.name while summary.json is missing
    # Class names come from the per-class keys while summary.json is missing.
    assert "| dos |" in text
    assert (run / "plots" / "confusion.png").is_file()


def test_report_before_the_first_round(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("", encoding="utf-8")
    text = write_report(run).read_text(encoding="utf-8")
    assert "No round has finished yet." in text
    assert (run / "plots" / "rounds.png").is_file()
    assert not (run / "plots" / "confusion.png").exists()


def test_report_flags_a_model_that_does_not_match_its_digest(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    (run / "model.safetensors").write_bytes(b"tampered")
    text = write_report(run).read_text(encoding="utf-8")
    assert "model.sha256: **digest does not match**" in text
    assert hashlib.sha256(b"tampered").hexdigest() in text


def test_report_is_rewritten_in_place(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    first = write_report(run).read_bytes()
    assert write_report(run).read_bytes() == first
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []


def test_a_last_line_cut_short_by_a_crash_is_skipped(tmp_path: Path) -> None:
    run = make_run(tmp_path, rounds=2, finished=False)
    with (run / "metrics.jsonl").open("a", encoding="utf-8") as stream:
        stream.write('{"round": 3, "accur')
    assert [r["round"] for r in read_metrics(run)] == [1, 2]
    assert write_report(run).is_file()


def test_a_started_run_without_rounds_reports_none_yet(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text("[train]\nrounds = 3\n")
    assert read_metrics(run) == []
