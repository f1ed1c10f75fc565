"""``[security]`` at the command line: the mode is announced, bad combinations are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedledger.cli import build_app

SMALL = ["--set", "train.rounds=1", "--set", "data.clients=4", "--set", "ledger.backend=none"]
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(build_app(), list(args))
    return result.exit_code, result.output


def test_an_enclave_run_says_it_is_simulated(tmp_path: Path) -> None:
    code, output = invoke(
        "run", *SMALL, "--set", "security.secure_aggregation=enclave", "--out", str(tmp_path / "r")
    )
    assert code == 0, output
    assert "not hardware-protected" in " ".join(output.split())


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["security.secure_aggregation=secagg+", "strategy.name=krum"], "needs each update"),
        (["security.secure_aggregation=ckks", "strategy.name=median"], "needs each update"),
        (["security.secure_aggregation=secagg+", "train.clients_per_round=1"], "at least 2"),
        (["security.secure_aggregation=ckks", 'security.ckks_layers=["nope"]'], "'nope'"),
        (["security.secure_aggregation=paillier"], "security.secure_aggregation"),
        (["security.secagg_dropout=1.5"], "security.secagg_dropout"),
    ],
)
def test_bad_security_settings_are_one_line_config_errors(
    tmp_path: Path, overrides: list[str], says: str
) -> None:
    sets = [x for o in overrides for x in ("--set", o)]
    code, output = invoke("run", *SMALL, *sets, "--out", str(tmp_path / "r"))
    assert code == 2 and says in output and output.startswith("config error"), output
    assert len(output.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
