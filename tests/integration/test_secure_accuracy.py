"""Secure aggregation costs no accuracy on real data: NSL-KDD, same config and seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedledger.assemble import prepare_run
from fedledger.config import DataConfig, load_config
from fedledger.data import build_federated

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
NSL_KDD = DATASETS / "nsl_kdd"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not NSL_KDD.is_dir(), reason=f"NSL-KDD not found at {NSL_KDD}"),
]


def test_every_mode_is_within_half_a_point_of_plain_aggregation(tmp_path: Path) -> None:
    data = build_federated(DataConfig(name="nsl-kdd", dir=str(NSL_KDD)), seed=0)
    accuracy = {}
    for mode in ("none", "enclave", "secagg+", "ckks"):
        cfg = load_config(
            None,
            [
                "data.name=nsl-kdd",
                f"data.dir={NSL_KDD}",
                "ledger.backend=none",
                "train.rounds=4",
                f"security.secure_aggregation={mode}",
            ],
        )
        runner, _ = prepare_run(cfg, tmp_path / mode.replace("+", "p"), data=data)
        accuracy[mode] = runner.run()["final"]["accuracy"]
    for mode in ("enclave", "secagg+", "ckks"):
        assert abs(accuracy[mode] - accuracy["none"]) <= 0.005, accuracy
    assert accuracy["enclave"] == accuracy["none"]  # the enclave aggregates the same floats
