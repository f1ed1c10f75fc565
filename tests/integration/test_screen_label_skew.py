"""The screen on N-BaIoT's label-skewed devices (the real subset in ``../shared``, when present):
honest devices whose traffic is mostly an attack class are not flagged for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedledger.assemble import build_simulation
from fedledger.config import load_config

N_BAIOT = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "n_baiot"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not N_BAIOT.is_dir(), reason=f"N-BaIoT not found at {N_BAIOT}"),
]


def test_round_one_flags_no_honest_device_for_its_label_mix() -> None:
    """Regression: across 50 devices (Dirichlet 0.5) the screen flagged 14 honest devices in
    round 1, 13 of them with mostly attack traffic, on the direction of their output layer
    alone (robust z 13–38); the family now counts up to ``fingerprints.OUTPUT_CAP``."""
    cfg = load_config(
        None,
        [
            "data.name=n-baiot",
            f"data.dir={N_BAIOT}",
            "data.clients=50",
            "data.partition=dirichlet",
            "data.alpha=0.5",
            "ledger.backend=none",
            "incentives.method=none",
        ],
    )
    sim = build_simulation(cfg)
    assert sim.strategy.name == "screen"
    local = sim.train_devices(1)
    sim.aggregate(1, local)
    assert sim.strategy.flagged == ()
