"""Simulated adversaries: who is malicious, what each attack changes, and that it shows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fedledger.assemble import build_simulation, prepare_run
from fedledger.attacks import ATTACKS, choose_malicious
from fedledger.config import load_config
from fedledger.errors import ConfigError
from fedledger.fl.engine import Simulation
from tests.conftest import make_dataset

BASE = ["ledger.backend=none", "train.lr=0.1", "train.batch_size=8", "model.hidden=[16]"]


def sim(*overrides: str, clients: int = 10) -> Simulation:
    cfg = load_config(None, [*BASE, *overrides])
    return build_simulation(cfg, data=make_dataset(n_clients=clients, n_classes=3))


def rows_by_device(s: Simulation, r: int = 1) -> dict[int, torch.Tensor]:
    local = s.train_devices(r)
    return {d: local.updates[k] for k, d in enumerate(local.order)}


def test_malicious_devices_are_a_seeded_fraction() -> None:
    chosen = choose_malicious(50, 0.2, seed=3)
    assert chosen == sorted(chosen) and len(chosen) == 10 and len(set(chosen)) == 10
    assert chosen == choose_malicious(50, 0.2, seed=3) != choose_malicious(50, 0.2, seed=4)
    assert choose_malicious(50, 0.0, seed=3) == []


@pytest.mark.parametrize("name", ["sign_flip", "gaussian"])
def test_update_attacks_change_only_the_malicious_rows(name: str) -> None:
    clean = rows_by_device(sim())
    attacked_sim = sim(f"attack.name={name}", "attack.fraction=0.3")
    bad = attacked_sim.malicious
    assert len(bad) == 3
    attacked = rows_by_device(attacked_sim)
    for d, row in clean.items():
        if d not in bad:
            assert torch.equal(attacked[d], row)
        elif name == "sign_flip":
            assert torch.allclose(attacked[d], -4.0 * row)
        else:
            assert abs(float(attacked[d].std()) - 1.0) < 0.2  # N(0, 1) noise
            assert not torch.allclose(attacked[d], row)


def test_label_flipping_and_scaling_poison_the_malicious_devices_data() -> None:
    s = sim("attack.name=label_flip", "attack.fraction=0.3")
    y, poisoned = s.y_train.numpy(), s._y_poisoned.numpy()
    changed = np.flatnonzero(y != poisoned)
    mine = np.concatenate([s.train_rows[d] for d in s.malicious])
    assert set(changed) <= set(mine.tolist())
    assert (poisoned[mine] == 2 - y[mine]).all()  # 3 classes: c -> 2 - c
    flipped = rows_by_device(s)
    scaled = rows_by_device(sim("attack.name=scaling", "attack.fraction=0.3"))
    for d in s.malicious:
        assert torch.allclose(scaled[d], 10.0 * flipped[d], atol=1e-6)


def test_an_attack_waits_for_its_start_round() -> None:
    clean = rows_by_device(sim(), r=1)
    late = sim("attack.name=sign_flip", "attack.fraction=0.3", "attack.start_round=2")
    assert all(torch.equal(late_row, clean[d]) for d, late_row in rows_by_device(late).items())


def test_undefended_fedavg_fails_and_median_and_krum_hold(tmp_path: Path) -> None:
    """A small attack × defence matrix: sign flipping and scaling by 30% of the devices."""
    accuracy = {}
    for attack in ("none", "sign_flip", "scaling"):
        for strategy in ("fedavg", "median", "krum"):
            cfg = load_config(
                None,
                [
                    *BASE,
                    "train.rounds=8",
                    f"strategy.name={strategy}",
                    f"attack.name={attack}",
                    f"attack.fraction={0 if attack == 'none' else 0.3}",
                    "data.clients=10",
                ],
            )
            runner, _ = prepare_run(cfg, tmp_path / f"{attack}-{strategy}")
            accuracy[attack, strategy] = runner.run()["final"]["accuracy"]
    clean = accuracy["none", "fedavg"]
    for attack in ("sign_flip", "scaling"):
        assert accuracy[attack, "fedavg"] < clean - 0.2, accuracy
        for defence in ("median", "krum"):
            assert accuracy[attack, defence] > clean - 0.1, accuracy
    devices = json.loads((tmp_path / "scaling-median" / "devices.json").read_text())["devices"]
    assert sum(d["role"] == "malicious" for d in devices) == 3
    assert {d.get("attack") for d in devices if d["role"] == "malicious"} == {"scaling"}


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["attack.name=sign_flip"], "attack.fraction"),
        (["attack.name=poison_everything", "attack.fraction=0.1"], "attack.name"),
        (
            ["attack.name=label_flip", "attack.fraction=0.1", "model.name=autoencoder"],
            "attack.name",
        ),
    ],
)
def test_bad_attack_settings_are_config_errors(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        sim(*overrides)
    assert err.value.key == key


def test_every_attack_is_registered_under_its_name() -> None:
    assert {name: cls.name for name, cls in ATTACKS.items()} == {n: n for n in ATTACKS}
