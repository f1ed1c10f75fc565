"""The command line end to end: exit codes, one-line errors, run folder, resume, report."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedledger.cli import build_app

SMALL = ["--set", "train.rounds=2", "--set", "data.clients=6"]
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(build_app(), list(args))
    return result.exit_code, result.output


def _one_line_error(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert "Traceback" not in output
    assert len(lines) == 1, output
    return lines[0]


def test_run_writes_a_complete_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, output = invoke("run", *SMALL, "--out", str(out))
    assert code == 0, output
    assert "synthetic" in output
    for name in (
        "config.toml",
        "metrics.jsonl",
        "devices.json",
        "model.safetensors",
        "model.sha256",
        "report.md",
        "summary.json",
    ):
        assert (out / name).is_file(), name
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in records] == [1, 2]
    devices = json.loads((out / "devices.json").read_text())["devices"]
    assert len(devices) == 6
    assert {"device", "cluster", "n_samples", "role"} <= set(devices[0])
    assert "rounds = 2" in (out / "config.toml").read_text()


def test_resume_extends_a_run_to_the_same_model(tmp_path: Path) -> None:
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert (
        invoke("run", "--set", "train.rounds=3", "--set", "data.clients=6", "--out", str(whole))[0]
        == 0
    )
    assert invoke("run", *SMALL, "--out", str(cut))[0] == 0
    code, output = invoke("run", "--resume", str(cut), "--set", "train.rounds=3")
    assert code == 0, output
    assert (cut / "model.sha256").read_text() == (whole / "model.sha256").read_text()
    code, output = invoke("run", "--resume", str(cut), "--set", "train.lr=0.5")
    assert code == 2
    assert "train.lr" in _one_line_error(output)


def test_resume_refuses_a_folder_whose_config_lacks_a_key_of_this_version(tmp_path: Path) -> None:
    """A key added since the run was written (its default may not be what the run did) must be
    named before the run goes on; nothing in the folder changes."""
    cut = tmp_path / "cut"
    assert invoke("run", *SMALL, "--out", str(cut))[0] == 0
    config = cut / "config.toml"
    text = config.read_text()
    assert "trigger_in_bounds = true\n" in text and "screen_support_gap = 0.2\n" in text
    old = text.replace("trigger_in_bounds = true\n", "").replace("screen_support_gap = 0.2\n", "")
    config.write_text(old)
    before = {p.name: p.read_bytes() for p in cut.iterdir() if p.is_file()}
    code, output = invoke("run", "--resume", str(cut), "--set", "train.rounds=3")
    assert code == 2
    line = _one_line_error(output)
    assert "attack.trigger_in_bounds" in line and "strategy.screen_support_gap" in line
    assert {p.name: p.read_bytes() for p in cut.iterdir() if p.is_file()} == before
    config.write_text(text)  # named again: it resumes
    assert invoke("run", "--resume", str(cut), "--set", "train.rounds=3")[0] == 0


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--set", "train.rounds=-1"], 2, "train.rounds"),
        (["--set", "train.lrr=0.1"], 2, "train.lrr"),
        (["--set", "data.name=kdd99"], 2, "data.name"),
        (["--set", "model.name=resnet"], 2, "model.name"),
        (
            ["--set", "data.name=nsl-kdd", "--set", "data.dir=/nonexistent/nsl"],
            1,
            "/nonexistent/nsl",
        ),
        (["--set", "data.name=npz"], 2, "data.path"),
        (["--set", "data.clients=100000", "--set", "data.name=digits"], 1, "data.clients"),
        (["/nonexistent/config.toml"], 2, "not found"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(
    tmp_path: Path, args: list[str], code: int, needle: str
) -> None:
    got, output = invoke("run", *args, "--out", str(tmp_path / "r"))
    assert got == code, output
    assert needle in _one_line_error(output)


def test_corrupt_and_truncated_csv_are_one_line_errors(tmp_path: Path) -> None:
    good = "".join(
        f"0,tcp,http,SF,{i},10,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,1,1,0,0,0,0,1,0,0,9,9,1,0,0,0,0,0,0,0,normal,21\n"
        for i in range(50)
    )
    (tmp_path / "KDDTest+.txt").write_text(good)
    (tmp_path / "KDDTrain+.txt").write_text(good + "0,tcp,http,SF,1,2\n")
    nsl = ("run", "--set", "data.name=nsl-kdd", "--set", f"data.dir={tmp_path}", "--out")
    code, output = invoke(*nsl, str(tmp_path / "r1"))
    assert code == 1
    assert "KDDTrain+" in _one_line_error(output)
    (tmp_path / "KDDTrain+.txt").unlink()
    blob = gzip.compress(good.encode() * 20)
    (tmp_path / "KDDTrain+.txt.gz").write_bytes(blob[: len(blob) // 2])
    code, output = invoke(*nsl, str(tmp_path / "r2"))
    assert code == 1
    assert "KDDTrain+" in _one_line_error(output)


def test_wrong_feature_count_in_npz(tmp_path: Path) -> None:
    import numpy as np

    p = tmp_path / "w.npz"
    np.savez(
        p,
        x_train=np.zeros((40, 5), np.float32),
        y_train=np.zeros(40, np.int64),
        x_test=np.zeros((10, 4), np.float32),
        y_test=np.zeros(10, np.int64),
    )
    code, output = invoke(
        "run", "--set", "data.name=npz", "--set", f"data.path={p}", "--out", str(tmp_path / "r")
    )
    assert code == 1
    assert "feature" in _one_line_error(output)


def test_datasets_list_and_report(tmp_path: Path) -> None:
    code, output = invoke("datasets", "list")
    assert code == 0
    for name in ("synthetic", "nsl-kdd", "n-baiot", "mnist", "femnist", "npz", "csv"):
        assert name in output
    out = tmp_path / "run"
    assert invoke("run", *SMALL, "--out", str(out))[0] == 0
    (out / "report.md").unlink()
    code, output = invoke("report", str(out))
    assert code == 0 and (out / "report.md").is_file()
    code, output = invoke("report", str(tmp_path / "missing"))
    assert code == 1
    _one_line_error(output)


@pytest.mark.integration
def test_default_run_as_a_newcomer_runs_it(tmp_path: Path) -> None:
    """``fedledger run`` with no arguments, in a fresh working directory, as a subprocess."""
    exe = Path(sys.executable).with_name("fedledger")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fedledger"]
    env = {**os.environ, "COLUMNS": "120"}
    proc = subprocess.run(
        [*cmd, "run"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["synthetic"] is True
    assert summary["final"]["accuracy"] > 0.85
    assert (runs[0] / "report.md").is_file()


def test_resuming_a_finished_run_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert invoke("run", *SMALL, "--out", str(out))[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    code, output = invoke("run", "--resume", str(out))
    assert code == 0, output
    assert "already finished" in output
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before
    code, output = invoke("run", "--resume", str(out), "--set", "train.rounds=1")
    assert code == 2
    assert "train.rounds" in _one_line_error(output)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_out_must_be_a_new_or_empty_folder_and_failures_leave_nothing(tmp_path: Path) -> None:
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    code, output = invoke("run", *SMALL, "--out", str(a_file))
    assert code == 1
    assert "is a file" in _one_line_error(output)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    code, output = invoke("run", *SMALL, "--out", str(busy))
    assert code == 1
    assert "not empty" in _one_line_error(output)
    missing = tmp_path / "never"
    code, output = invoke(
        "run", "--set", "data.name=nsl-kdd", "--set", "data.dir=/nonexistent", "--out", str(missing)
    )
    assert code == 1
    assert not missing.exists()


def test_resume_of_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    code, output = invoke("run", "--resume", str(tmp_path))
    assert code == 1
    assert "config.toml" in _one_line_error(output)
