"""A whole run on a JSON-RPC node (the tests' Hardhat node): same model, audit passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedledger.assemble import prepare_run
from fedledger.audit import audit_run
from fedledger.config import load_config
from tests.conftest import make_dataset

CFG = ["train.rounds=2", "train.lr=0.1", "train.batch_size=8", "model.hidden=[16]"]


@pytest.mark.integration
def test_a_run_on_a_json_rpc_node_matches_the_embedded_ledger_and_audits(
    hardhat_url: str, tmp_path: Path
) -> None:
    results = {}
    for backend in ("embedded", "rpc"):
        cfg = load_config(
            None, [*CFG, f"ledger.backend={backend}", f"ledger.url={hardhat_url}", "train.seed=7"]
        )
        runner, _ = prepare_run(cfg, tmp_path / backend, data=make_dataset(n_clients=5))
        results[backend] = runner.run()
    assert results["rpc"]["model_sha256"] == results["embedded"]["model_sha256"]
    report = audit_run(tmp_path / "rpc")
    assert report.ok, [c.problems for c in report.checks]
    chain = next(c for c in report.checks if c.name == "chain")
    assert chain.checked > 0  # every logged transaction was confirmed by the node
    metrics = [json.loads(x) for x in (tmp_path / "rpc" / "metrics.jsonl").read_text().splitlines()]
    assert all(m["ledger"]["finalised"] for m in metrics)
