"""``fedledger audit`` and ``fedledger ledger show`` end to end, and ledger errors at the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedledger.cli import build_app

SMALL = ["--set", "train.rounds=2", "--set", "data.clients=6"]
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(build_app(), list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    code, output = invoke("run", *SMALL, "--out", str(out))
    assert code == 0, output
    assert "2 of 2 rounds finalised" in output
    return out


def test_audit_passes_and_reports_every_check(run_dir: Path) -> None:
    code, output = invoke("audit", str(run_dir))
    assert code == 0, output
    for check in ("chain", "config", "registry", "envelopes", "votes", "models", "metrics"):
        assert f"PASS {check}" in output
    assert "audit OK" in output
    code, output = invoke("audit", str(run_dir), "--json")
    assert code == 0 and json.loads(output)["ok"] is True


def test_audit_fails_with_exit_1_naming_the_tampered_blob(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    blob = sorted((copy / "store").iterdir())[-1]
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x00")
    code, output = invoke("audit", str(copy))
    assert code == 1
    assert "FAIL models" in output and blob.name in output and "audit FAILED" in output


def test_ledger_show(run_dir: Path) -> None:
    code, output = invoke("ledger", "show", str(run_dir), "--json")
    assert code == 0, output
    shown = json.loads(output)
    assert [r["status"] for r in shown["rounds"]] == ["finalised", "finalised"]
    assert all(
        len(r["votes"]) == 3 and all(v["agrees"] for v in r["votes"]) for r in shown["rounds"]
    )
    assert shown["members"]["device"] == 6 and shown["members"]["validator"] == 3
    # every round's pool was paid out (GTG-Shapley by default) and every device staked
    summary = json.loads((run_dir / "summary.json").read_text())
    names = [f"device-{d:03d}" for d in range(6)]
    assert shown["balances"] == {
        names[int(d)]: v for d, v in summary["rewards"]["balances"].items() if v
    }
    assert sum(shown["balances"].values()) == 2 * summary["rewards"]["pool"]
    assert shown["stakes"] == dict.fromkeys(names, 100)
    assert shown["token"]["treasury"] == shown["token"]["total_supply"] - 2 * 1000 - 6 * 100
    code, output = invoke("ledger", "show", str(run_dir))
    assert code == 0 and "finalised" in output and "3/3" in output


def test_audit_of_a_run_without_ledger_is_a_one_line_error(tmp_path: Path) -> None:
    out = tmp_path / "plain"
    code, _ = invoke("run", *SMALL, "--set", "ledger.backend=none", "--out", str(out))
    assert code == 0
    code, output = invoke("audit", str(out))
    assert code == 1 and "no ledger to audit" in output and "Traceback" not in output


def test_unreachable_rpc_node_is_one_line_and_leaves_no_folder(tmp_path: Path) -> None:
    out = tmp_path / "rpc"
    code, output = invoke(
        "run",
        *SMALL,
        "--set",
        "ledger.backend=rpc",
        "--set",
        "ledger.url=http://127.0.0.1:9",
        "--out",
        str(out),
    )
    assert code == 1, output
    assert "Traceback" not in output and "127.0.0.1:9" in output
    assert not out.exists()
