"""The audit's ``secure`` check: quotes and transcripts of secure-aggregation runs, tampering
named by round, validator and reason, and the simulated enclave labelled as such."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fedledger.assemble import prepare_run
from fedledger.audit import Check, audit_run
from fedledger.cli import build_app
from fedledger.config import load_config
from tests.conftest import make_dataset

CFG = ["train.rounds=2", "train.lr=0.1", "train.batch_size=8", "model.hidden=[16]"]
LABEL = "enclave: simulated: not hardware-protected"


def run(out: Path, mode: str) -> Path:
    cfg = load_config(None, [*CFG, f"security.secure_aggregation={mode}"])
    runner, done = prepare_run(cfg, out, resume=False, data=make_dataset(n_clients=6))
    runner.run(start_after=done)
    return out


@pytest.fixture(scope="module")
def enclave_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run(tmp_path_factory.mktemp("secure") / "enclave", "enclave")


@pytest.fixture
def copy(enclave_run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(enclave_run, target)
    return target


def secure_check(run_dir: Path) -> Check:
    return next(c for c in audit_run(run_dir).checks if c.name == "secure")


def failures(run_dir: Path) -> dict[str, list[str]]:
    return {c.name: c.problems for c in audit_run(run_dir).checks if not c.ok}


def flip(hexstr: str, at: int) -> str:
    """``hexstr`` with the hex digit at ``at`` changed (still hex, so still parseable)."""
    return hexstr[:at] + ("1" if hexstr[at] == "0" else "0") + hexstr[at + 1 :]


def edit_jsonl(path: Path, r: int, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to round ``r``'s line of a JSON-lines file."""
    rows = path.read_text().splitlines()
    for i, row in enumerate(rows):
        obj = json.loads(row)
        if obj["round"] == r:
            change(obj)
            rows[i] = json.dumps(obj)
    path.write_text("".join(f"{row}\n" for row in rows))


def edit_round(run_dir: Path, r: int, change: Callable[[dict[str, Any]], None]) -> None:
    edit_jsonl(run_dir / "ledger" / "rounds.jsonl", r, change)


def edit_transcript(record: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> None:
    """Change the round's transcript and re-encode it canonically (its signature stays)."""
    evidence = record["secure"]["evidence"]
    transcript = json.loads(bytes.fromhex(evidence["transcript"]))
    change(transcript)
    raw = json.dumps(transcript, sort_keys=True, separators=(",", ":")).encode()
    evidence["transcript"] = raw.hex()


# ---- untouched runs --------------------------------------------------------------------------


def test_an_enclave_run_audits_ok_and_labels_the_simulated_enclave(enclave_run: Path) -> None:
    report = audit_run(enclave_run)
    assert report.ok, [c.problems for c in report.checks]
    secure = next(c for c in report.checks if c.name == "secure")
    assert LABEL in secure.notes and "mode enclave" in secure.notes
    assert secure.checked == 2 * 3 + 2  # a quote per vote, a transcript per round
    cli = CliRunner()
    result = cli.invoke(build_app(), ["audit", str(enclave_run)])
    assert result.exit_code == 0, result.output
    assert "PASS secure" in result.output and LABEL in result.output
    result = cli.invoke(build_app(), ["audit", str(enclave_run), "--json"])
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    assert checks["secure"]["ok"] and LABEL in checks["secure"]["notes"]


def test_the_metrics_line_carries_the_record_s_secure_summary(enclave_run: Path) -> None:
    line = json.loads((enclave_run / "metrics.jsonl").read_text().splitlines()[0])
    record = json.loads((enclave_run / "ledger" / "rounds.jsonl").read_text().splitlines()[0])
    assert line["secure"]["mode"] == "enclave" and "evidence" not in line["secure"]
    assert line["secure"]["aggregated"] == record["secure"]["aggregated"] > 0


def test_a_ckks_run_audits_ok(tmp_path: Path) -> None:
    report = audit_run(run(tmp_path / "ckks", "ckks"))
    assert report.ok, [c.problems for c in report.checks]
    secure = next(c for c in report.checks if c.name == "secure")
    assert LABEL in secure.notes and "mode ckks" in secure.notes and secure.checked == 8


def test_a_secagg_run_audits_ok_with_zero_quote_digests(tmp_path: Path) -> None:
    report = audit_run(run(tmp_path / "secagg", "secagg+"))
    assert report.ok, [c.problems for c in report.checks]
    secure = next(c for c in report.checks if c.name == "secure")
    assert secure.notes == ["mode secagg+"] and secure.checked == 6  # every vote's zero digest


def test_a_run_without_secure_aggregation_passes_the_check(tmp_path: Path) -> None:
    report = audit_run(run(tmp_path / "plain", "none"))
    assert report.ok, [c.problems for c in report.checks]
    secure = next(c for c in report.checks if c.name == "secure")
    assert secure.ok and "no secure aggregation" in secure.notes


# ---- tampering -------------------------------------------------------------------------------


def test_a_flipped_byte_of_a_vote_s_quote_is_named(copy: Path) -> None:
    def change(record: dict[str, Any]) -> None:
        vote = record["votes"][1]
        vote["quote"] = flip(vote["quote"], len(vote["quote"]) - 10)  # in the signature

    edit_round(copy, 2, change)
    problems = failures(copy)
    assert set(problems) == {"secure"}, problems
    assert (
        "round 2: validator-1's quote: quote signature does not verify under the platform key"
        in problems["secure"]
    )
    assert any(p.startswith("round 2: validator-1's quote hashes to") for p in problems["secure"])


def test_a_flipped_byte_of_a_transcript_signature_is_named(copy: Path) -> None:
    def change(record: dict[str, Any]) -> None:
        evidence = record["secure"]["evidence"]
        evidence["signature"] = flip(evidence["signature"], 7)

    edit_round(copy, 1, change)
    problems = failures(copy)
    assert problems == {
        "secure": [
            "round 1: the enclave's transcript: transcript signature does not verify under "
            "the enclave's key"
        ]
    }


def test_an_edited_transcript_input_fails_its_signature(copy: Path) -> None:
    def change(record: dict[str, Any]) -> None:
        def digest(t: dict[str, Any]) -> None:
            t["inputs"][0]["digest"] = flip(t["inputs"][0]["digest"], 0)

        edit_transcript(record, digest)

    edit_round(copy, 2, change)
    problems = failures(copy)
    assert set(problems) == {"secure"}, problems
    assert problems["secure"] == [
        "round 2: the enclave's transcript: transcript signature does not verify under the "
        "enclave's key"
    ]


def test_an_edited_secure_entry_of_metrics_jsonl_is_named(copy: Path) -> None:
    def change(line: dict[str, Any]) -> None:
        line["secure"]["aggregated"] -= 1

    edit_jsonl(copy / "metrics.jsonl", 1, change)
    edit_jsonl(copy / "metrics.jsonl", 2, lambda line: line.pop("secure"))
    problems = failures(copy)
    assert set(problems) == {"metrics"}, problems
    records = [json.loads(r) for r in (copy / "ledger" / "rounds.jsonl").read_text().splitlines()]
    aggregated, last = (rec["secure"]["aggregated"] for rec in records)
    assert problems["metrics"] == [
        f"metrics.jsonl line 1 (round 1): secure.aggregated is {aggregated - 1}, "
        f"ledger/rounds.jsonl says {aggregated}",
        "metrics.jsonl line 2 (round 2): no secure entry, but ledger/rounds.jsonl records "
        "secure aggregation ('enclave') for round 2",
        # summary.json's final metrics are the last line's, which lost its entry
        f"summary.json: final secure is {{'mode': 'enclave', 'aggregated': {last}, "
        "'refused': {}}, metrics.jsonl says None",
    ]


def test_a_quote_replayed_from_another_round_or_validator_is_named(copy: Path) -> None:
    first = json.loads((copy / "ledger" / "rounds.jsonl").read_text().splitlines()[0])

    def change(record: dict[str, Any]) -> None:
        record["votes"][0]["quote"] = first["votes"][0]["quote"]  # round 1's, into round 2
        record["votes"][2]["quote"] = record["votes"][1]["quote"]  # another validator's

    edit_round(copy, 2, change)
    problems = secure_check(copy).problems
    replay = "quote answers another challenge (a replayed quote)"
    assert f"round 2: validator-0's quote: {replay}" in problems
    assert f"round 2: validator-2's quote: {replay}" in problems
    assert "round 2: validator-1's quote" not in " ".join(problems)


def test_unreadable_evidence_is_a_named_failure_not_a_traceback(copy: Path) -> None:
    def change(record: dict[str, Any]) -> None:
        record["votes"][0]["quote"] = "not hex"
        del record["secure"]["evidence"]

    edit_round(copy, 1, change)
    problems = secure_check(copy).problems
    assert any(p.startswith("round 1: validator-0's quote does not decode") for p in problems)
    assert any(
        p.startswith("round 1: ledger/rounds.jsonl's record is unreadable or incomplete")
        and "evidence" in p
        for p in problems
    ), problems


def test_relabelling_the_enclave_fails_and_the_audit_still_says_simulated(copy: Path) -> None:
    path = copy / "ledger" / "deployment.json"
    deployment = json.loads(path.read_text())
    deployment["security"]["enclave"]["label"] = "hardware-protected"
    path.write_text(json.dumps(deployment))
    check = secure_check(copy)
    assert LABEL in check.notes
    assert check.problems == [
        "deployment.json: the enclave is labelled 'hardware-protected', but it is the "
        "simulated one (simulated: not hardware-protected)"
    ]


def test_an_unregistered_measurement_fails_every_quote(copy: Path) -> None:
    path = copy / "ledger" / "deployment.json"
    deployment = json.loads(path.read_text())
    enclave = deployment["security"]["enclave"]
    enclave["measurement"] = flip(enclave["measurement"], 0)
    path.write_text(json.dumps(deployment))
    problems = secure_check(copy).problems
    assert problems[0].startswith("deployment.json: enclave measurement")
    assert problems[0].endswith("is not registered on chain")
    assert sum("is not registered" in p and "validator-" in p for p in problems) == 6
    assert sum("is of measurement" in p for p in problems) == 0  # no quote verified


def test_an_envelope_missing_from_the_transcript_s_inputs_is_named(copy: Path) -> None:
    path = copy / "ledger" / "envelopes.jsonl"
    rows = path.read_text().splitlines()
    first = next(i for i, row in enumerate(rows) if json.loads(row)["round"] == 1)
    path.write_text("".join(f"{row}\n" for i, row in enumerate(rows) if i != first))
    problems = secure_check(copy).problems
    assert any(
        p.startswith("round 1: the enclave's transcript: its inputs are not the committed")
        and "(0 envelope(s) missing, 1 input(s) not committed)" in p
        for p in problems
    ), problems
    assert any(p.startswith("round 1: ledger/rounds.jsonl's secure entry has") for p in problems)
