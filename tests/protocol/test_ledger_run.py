"""Runs on the embedded ledger: same model as without it, audit passes, tampering is named."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from fedledger.assemble import prepare_run
from fedledger.audit import audit_run
from fedledger.config import load_config
from fedledger.errors import FedledgerError, ModelFidelityError
from fedledger.fl.ledger_protocol import LedgerProtocol
from fedledger.security.envelope import seal_envelope
from fedledger.security.identity import derive_identity
from fedledger.security.payload import PLAIN_F32, encode_f32
from tests.conftest import make_dataset

CFG = ["train.rounds=3", "train.lr=0.1", "train.batch_size=8", "model.hidden=[16]"]


def run(out: Path, *overrides: str, clients: int = 6, resume: bool = False) -> dict:  # type: ignore[type-arg]
    cfg = load_config(None, [*CFG, *overrides])
    runner, done = prepare_run(cfg, out, resume=resume, data=make_dataset(n_clients=clients))
    return runner.run(start_after=done)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write_lines(path: Path, rows: list[str]) -> None:
    path.write_text("".join(f"{r}\n" for r in rows))


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ledger") / "run"
    run(out)
    return out


@pytest.fixture
def copy(finished: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(finished, target)
    return target


def failures(run_dir: Path) -> dict[str, list[str]]:
    return {c.name: c.problems for c in audit_run(run_dir).checks if not c.ok}


def test_the_ledger_changes_nothing_about_the_model(finished: Path, tmp_path: Path) -> None:
    plain = run(tmp_path / "plain", "ledger.backend=none")
    summary = json.loads((finished / "summary.json").read_text())
    assert summary["model_sha256"] == plain["model_sha256"]
    record = json.loads(lines(finished / "metrics.jsonl")[-1])
    assert record["ledger"]["finalised"] and record["ledger"]["votes"] == 3
    assert record["ledger"]["accepted"] == 6 and record["ledger"]["rejected"] == 0


def test_an_untouched_run_passes_every_check_and_the_audit_writes_nothing(
    finished: Path,
) -> None:
    before = {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()}
    report = audit_run(finished)
    assert before == {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()}
    assert report.ok, [c.problems for c in report.checks]
    assert {c.name for c in report.checks} >= {
        "chain",
        "config",
        "registry",
        "envelopes",
        "votes",
        "models",
        "metrics",
        "token",
    }


def _flip_blob(d: Path) -> None:
    blob = sorted((d / "store").iterdir())[0]
    data = bytearray(blob.read_bytes())
    data[-3] ^= 0x01
    blob.write_bytes(bytes(data))


def _edit_metrics(d: Path) -> None:
    rows = lines(d / "metrics.jsonl")
    rec = json.loads(rows[1])
    rec["accuracy"] = 0.999
    rows[1] = json.dumps(rec)
    write_lines(d / "metrics.jsonl", rows)


def _chain_edit(how: str) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        path = d / "ledger" / "chain.jsonl"
        rows = lines(path)
        if how == "drop":
            del rows[3]
        elif how == "reorder":
            rows[3], rows[4] = rows[4], rows[3]
        else:
            rec = json.loads(rows[-2])
            key = "raw" if "raw" in rec else next(k for k in rec if "hash" in k)
            value = rec[key]
            rec[key] = value[:-2] + ("00" if value[-2:] != "00" else "11")
            rows[-2] = json.dumps(rec)
        write_lines(path, rows)

    return edit


def _edit_envelope(d: Path) -> None:
    path = d / "ledger" / "envelopes.jsonl"
    rows = lines(path)
    rec = json.loads(rows[0])
    rec["header"]["n_samples"] += 1
    rows[0] = json.dumps(rec)
    write_lines(path, rows)


def _edit_vote_evidence(d: Path) -> None:
    path = d / "ledger" / "rounds.jsonl"
    rows = lines(path)
    rec = json.loads(rows[0])
    rec["votes"][0]["stats"]["confusion"][0][0] += 1
    rows[0] = json.dumps(rec)
    write_lines(path, rows)


def _edit_config(d: Path) -> None:
    text = (d / "config.toml").read_text().replace("lr = 0.1", "lr = 0.2")
    (d / "config.toml").write_text(text)


def _drop_config_key(d: Path) -> None:
    text = (d / "config.toml").read_text()
    assert "screen_support_gap = " in text
    kept = [ln for ln in text.splitlines(keepends=True) if not ln.startswith("screen_support_gap")]
    (d / "config.toml").write_text("".join(kept))


def _drop_final_block_line(d: Path) -> None:
    path = d / "ledger" / "chain.jsonl"
    write_lines(path, lines(path)[:-1])


def _edit_json(rel: str, edit: Callable[[dict], None]) -> Callable[[Path], None]:  # type: ignore[type-arg]
    def tamper(d: Path) -> None:
        obj = json.loads((d / rel).read_text())
        edit(obj)
        (d / rel).write_text(json.dumps(obj))

    return tamper


def _jsonl_line(rel: str, index: int, edit: Callable[[dict], None]) -> Callable[[Path], None]:  # type: ignore[type-arg]
    def tamper(d: Path) -> None:
        rows = lines(d / rel)
        rec = json.loads(rows[index])
        edit(rec)
        rows[index] = json.dumps(rec)
        write_lines(d / rel, rows)

    return tamper


def _duplicate_first_metrics_line(d: Path) -> None:
    rows = lines(d / "metrics.jsonl")
    fake = json.loads(rows[0])
    fake["accuracy"] = 0.99
    write_lines(d / "metrics.jsonl", [json.dumps(fake), *rows])


def _extra_tensor(d: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(d / "model.safetensors")
    tensors["backdoor"] = torch.ones(3)
    save_file(tensors, d / "model.safetensors")


@pytest.mark.parametrize(
    ("tamper", "check", "says"),
    [
        (_drop_final_block_line, "chain", "no block line seals"),
        (
            _edit_json("summary.json", lambda s: s["final"].update(accuracy=0.99)),
            "metrics",
            "summary.json",
        ),
        (
            _jsonl_line("metrics.jsonl", 0, lambda r: r.update(detection_rate=0.5)),
            "metrics",
            "detection_rate",
        ),
        (
            _jsonl_line("metrics.jsonl", 1, lambda r: r["ledger"].update(finalised=False)),
            "metrics",
            "ledger.finalised",
        ),
        (_duplicate_first_metrics_line, "metrics", "a second line for round 1"),
        (
            _jsonl_line("ledger/rounds.jsonl", 1, lambda r: r.update(status="failed")),
            "rounds",
            "status",
        ),
        (
            _jsonl_line("ledger/rounds.jsonl", 0, lambda r: r["gateways"][0].update(count=99)),
            "rounds",
            "counts differ",
        ),
        (
            _edit_json("ledger/deployment.json", lambda d: d["members"][0].update(name="dev-x")),
            "registry",
            "does not have the id",
        ),
        (_edit_json("ledger/deployment.json", lambda d: d.update(quorum=1)), "registry", "quorum"),
        (_extra_tensor, "models", "other tensors"),
        (_flip_blob, "models", "hashes to"),
        (_edit_metrics, "metrics", "accuracy is 0.999"),
        (_chain_edit("drop"), "chain", "chain.jsonl:"),
        (_chain_edit("reorder"), "chain", "chain.jsonl:"),
        (_chain_edit("alter"), "chain", "chain.jsonl:"),
        (_edit_envelope, "envelopes", "does not verify"),
        (_edit_vote_evidence, "votes", "does not match the metrics digest"),
        (_edit_config, "config", "config.toml was changed"),
        (_drop_config_key, "config", "lacks strategy.screen_support_gap: written by an earlier"),
    ],
    ids=[
        "chain-cut",
        "summary",
        "detection-rate",
        "ledger-entry",
        "duplicate-line",
        "round-status",
        "commit-count",
        "member-name",
        "quorum",
        "extra-tensor",
        "blob",
        "metrics",
        "chain-drop",
        "chain-reorder",
        "chain-alter",
        "envelope",
        "votes",
        "config",
        "config-key",
    ],
)
def test_tampering_fails_the_audit_naming_it(
    copy: Path, tamper: Callable[[Path], None], check: str, says: str
) -> None:
    tamper(copy)
    failed = failures(copy)
    assert check in failed, failed
    assert any(says in p for p in failed[check]), failed[check]


def test_forged_replayed_and_unregistered_envelopes_are_refused_and_counted(
    tmp_path: Path,
) -> None:
    cfg = load_config(None, CFG)
    runner, _ = prepare_run(cfg, tmp_path / "run", data=make_dataset(n_clients=6))
    proto = runner.sim.driver
    assert isinstance(proto, LedgerProtocol)
    device = proto.people.devices[0]
    sybil = derive_identity(0, "device", "sybil")  # not in the registry
    payload = encode_f32(runner.sim.global_params.numpy() * 0)
    gw = proto.people.gateway_of[0]
    proto.inbox = {
        gw: [
            seal_envelope(sybil, 1, 50, PLAIN_F32, payload, b"s" * 16).encode(),
            seal_envelope(device, 7, 50, PLAIN_F32, payload, b"r" * 16).encode(),  # other round
            seal_envelope(device, 1, 50, PLAIN_F32, payload, b"d" * 16).encode(),  # duplicate
        ]
    }
    runner.run()
    first = json.loads(lines(tmp_path / "run" / "metrics.jsonl")[0])["ledger"]
    assert first["rejections"] == {"duplicate": 1, "unregistered": 1, "wrong-round": 1}
    assert first["finalised"] and first["accepted"] == 6
    assert audit_run(tmp_path / "run").ok


def test_a_revoked_device_is_refused(tmp_path: Path) -> None:
    cfg = load_config(None, [*CFG, "train.rounds=1"])
    runner, _ = prepare_run(cfg, tmp_path / "run", data=make_dataset(n_clients=6))
    proto = runner.sim.driver
    assert isinstance(proto, LedgerProtocol)
    proto.set_device_status(2, active=False, round_number=0)
    runner.run()
    first = json.loads(lines(tmp_path / "run" / "metrics.jsonl")[0])["ledger"]
    assert first["rejections"] == {"revoked": 1} and first["accepted"] == 5
    assert audit_run(tmp_path / "run").ok


@pytest.mark.parametrize("mode", ["wrong-model", "wrong-set"])
def test_a_byzantine_validator_is_outvoted_and_recorded(tmp_path: Path, mode: str) -> None:
    run(tmp_path / "run", "ledger.byzantine=1", f"ledger.byzantine_mode={mode}")
    record = json.loads(lines(tmp_path / "run" / "metrics.jsonl")[-1])["ledger"]
    assert record["finalised"] and record["votes"] == 2
    report = audit_run(tmp_path / "run")
    assert report.ok
    votes = next(c for c in report.checks if c.name == "votes")
    assert sum("validator-2 was outvoted" in n for n in votes.notes) == 3


def test_without_a_quorum_the_previous_model_stands(tmp_path: Path) -> None:
    summary = run(tmp_path / "run", "ledger.byzantine=2")
    records = [json.loads(x) for x in lines(tmp_path / "run" / "metrics.jsonl")]
    assert not any(r["ledger"]["finalised"] for r in records)
    assert len({r["accuracy"] for r in records}) == 1  # the genesis model, every round
    deployment = json.loads((tmp_path / "run" / "ledger" / "deployment.json").read_text())
    genesis = deployment["genesis_model"]
    assert summary["final"]["ledger"]["finalised"] is False
    assert audit_run(tmp_path / "run").ok
    assert (tmp_path / "run" / "store" / f"{genesis}.safetensors").exists()


def test_a_crash_loses_at_most_the_round_in_progress(finished: Path, tmp_path: Path) -> None:
    """Stop after round 2 with round 3's transactions half on the chain log; resume."""
    crashed = tmp_path / "crashed"
    run(crashed, "train.rounds=2")
    # round 3 started: its open_round transaction reached the chain log, then the crash
    partial = tmp_path / "partial"
    shutil.copytree(finished, partial)
    rows = lines(partial / "ledger" / "chain.jsonl")
    round3 = [r for r in rows if json.loads(r).get("round") == 3]
    write_lines(
        crashed / "ledger" / "chain.jsonl", [*lines(crashed / "ledger" / "chain.jsonl"), round3[0]]
    )
    resumed = run(crashed, "train.rounds=3", resume=True)
    assert (
        resumed["model_sha256"]
        == json.loads((finished / "summary.json").read_text())["model_sha256"]
    )
    assert audit_run(crashed).ok


def test_a_tampered_model_blob_is_refused_before_training(finished: Path, tmp_path: Path) -> None:
    stopped = tmp_path / "stopped"
    run(stopped, "train.rounds=2")
    latest = json.loads(lines(stopped / "ledger" / "rounds.jsonl")[-1])["model"]
    blob = stopped / "store" / f"{latest}.safetensors"
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(ModelFidelityError, match="refusing the altered model"):
        run(stopped, "train.rounds=3", resume=True)


def test_transactions_per_round_do_not_grow_with_devices(tmp_path: Path) -> None:
    counts = []
    for n in (4, 24):
        run(tmp_path / f"n{n}", "train.rounds=1", "ledger.gateways=2", clients=n)
        rec = json.loads(lines(tmp_path / f"n{n}" / "metrics.jsonl")[0])["ledger"]
        counts.append(rec["transactions"])
    # open + one commit per gateway + one vote per validator + the rewards payout
    assert counts[0] == counts[1] == 1 + 2 + 3 + 1


def test_the_network_in_this_process_gives_the_same_chain(finished: Path, tmp_path: Path) -> None:
    local = run(tmp_path / "local", "ledger.separate_process=false")
    assert (
        local["model_sha256"] == json.loads((finished / "summary.json").read_text())["model_sha256"]
    )
    chain = (tmp_path / "local" / "ledger" / "chain.jsonl").read_bytes()
    assert chain == (finished / "ledger" / "chain.jsonl").read_bytes()
    assert audit_run(tmp_path / "local").ok


def test_a_valid_envelope_from_an_unsampled_device_is_aggregated(tmp_path: Path) -> None:
    # FedAvg: the anomaly screen would flag the outsider's constant update and leave it out
    overrides = [*CFG, "train.rounds=1", "train.clients_per_round=3", "strategy.name=fedavg"]
    cfg = load_config(None, overrides)
    runner, _ = prepare_run(cfg, tmp_path / "run", data=make_dataset(n_clients=6))
    proto = runner.sim.driver
    assert isinstance(proto, LedgerProtocol)
    sampled = runner.sim.sample_devices(1)
    outsider = next(d for d in range(6) if d not in sampled)
    payload = encode_f32(runner.sim.global_params.numpy() * 0 + 0.5)
    env = seal_envelope(proto.people.devices[outsider], 1, 40, PLAIN_F32, payload, b"o" * 16)
    proto.inbox = {proto.people.gateway_of[outsider]: [env.encode()]}
    with_outsider = runner.run()
    led = json.loads(lines(tmp_path / "run" / "metrics.jsonl")[0])["ledger"]
    assert led["accepted"] == 4 and led["finalised"]
    assert audit_run(tmp_path / "run").ok
    alone, _ = prepare_run(cfg, tmp_path / "alone", data=make_dataset(n_clients=6))
    assert alone.run()["model_sha256"] != with_outsider["model_sha256"]


def test_a_round_where_every_envelope_is_refused_keeps_the_model(tmp_path: Path) -> None:
    cfg = load_config(None, [*CFG, "train.rounds=2"])
    runner, _ = prepare_run(cfg, tmp_path / "run", data=make_dataset(n_clients=6))
    proto = runner.sim.driver
    assert isinstance(proto, LedgerProtocol)
    for d in range(6):
        proto.set_device_status(d, active=False, round_number=0)
    start = runner.sim.global_params.clone()
    runner.run()
    records = [json.loads(x)["ledger"] for x in lines(tmp_path / "run" / "metrics.jsonl")]
    assert all(r["accepted"] == 0 and r["rejections"] == {"revoked": 6} for r in records)
    assert all(r["finalised"] for r in records)  # validators agree the model stays
    assert torch.equal(runner.sim.global_params, start)
    assert audit_run(tmp_path / "run").ok


def test_diverged_training_is_named_and_the_network_process_stops(tmp_path: Path) -> None:
    cfg = load_config(None, [*CFG, "train.lr=1e30"])
    runner, _ = prepare_run(cfg, tmp_path / "run", data=make_dataset(n_clients=6))
    proto = runner.sim.driver
    assert isinstance(proto, LedgerProtocol)
    with pytest.raises(FedledgerError, match=r"lower train\.lr"):
        runner.run()
    proc = proto.net._proc  # type: ignore[attr-defined]
    assert proc.poll() is not None  # the child was stopped, not left behind
