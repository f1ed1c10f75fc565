"""fedledger's engine computes exactly plain FedAvg: it matches the benchmark's plain PyTorch
loop (benchmarks/w1_plain.py) round by round on the same batches."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from fedledger.assemble import build_simulation
from fedledger.config import load_config
from fedledger.fl import RunFolder, Runner

ROOT = Path(__file__).resolve().parents[2]


def _plain_loop():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("w1_plain", ROOT / "benchmarks" / "w1_plain.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.integration
def test_engine_matches_the_plain_pytorch_loop(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n, f, k = 900, 12, 3
    centres = rng.normal(0, 1.5, size=(k, f))
    y = rng.integers(0, k, size=n)
    x = (centres[y] + rng.normal(0, 1, size=(n, f))).astype(np.float32)
    client = rng.integers(0, 5, size=n).astype(np.int32)  # 5 devices of unequal size
    yt = rng.integers(0, k, size=300)
    xt = (centres[yt] + rng.normal(0, 1, size=(300, f))).astype(np.float32)
    npz = tmp_path / "w.npz"
    np.savez(npz, x_train=x, y_train=y, client=client, x_test=xt, y_test=yt)

    plain = _plain_loop().run(npz, rounds=4, seed=0, shuffle="fedledger")

    cfg = load_config(
        ROOT / "benchmarks" / "w1_fedledger.toml",
        [f"data.path={npz}", "train.rounds=4"],
    )
    out = tmp_path / "run"
    Runner(build_simulation(cfg), RunFolder.create(out), cfg.train.rounds).run()
    ours = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]

    assert [r["round"] for r in ours] == [r["round"] for r in plain["rounds"]]
    for mine, theirs in zip(ours, plain["rounds"], strict=True):
        assert mine["accuracy"] == pytest.approx(theirs["accuracy"], abs=1.5 / 300)
