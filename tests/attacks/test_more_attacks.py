"""Backdoor, ALIE, min-max/min-sum, free-riding and replay: each malicious row is what its paper
defines (recomputed here independently), and nothing else changes."""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np
import pytest
import torch
from torch import nn

import fedledger.attacks
from fedledger.assemble import build_simulation
from fedledger.attacks import ATTACKS, Backdoor
from fedledger.attacks.alie import z_max
from fedledger.attacks.min_max import search_gamma
from fedledger.config import load_config
from fedledger.errors import ConfigError, FedledgerError
from fedledger.fl.engine import Simulation
from fedledger.fl.round_data import LocalUpdates
from tests.conftest import make_dataset

BASE = ["ledger.backend=none", "train.lr=0.1", "train.batch_size=8", "model.hidden=[16]"]
NEW = ("backdoor", "alie", "min_max", "min_sum", "free_rider", "replay")


def sim(*overrides: str, clients: int = 10) -> Simulation:
    cfg = load_config(None, [*BASE, *overrides])
    return build_simulation(cfg, data=make_dataset(n_clients=clients, n_classes=3))


def rows_by_device(s: Simulation, r: int = 1) -> dict[int, torch.Tensor]:
    local = s.train_devices(r)
    return {d: local.updates[k] for k, d in enumerate(local.order)}


def honest_rows(s: Simulation, r: int) -> dict[int, torch.Tensor]:
    """Round ``r``'s updates of ``s`` as every device trained them (no attack), from the same
    global model."""
    start = s.attack_start
    s.attack_start = 10**9
    try:
        local = Simulation.train_devices(s, r)  # not a spy (below) that wraps it
    finally:
        s.attack_start = start
    return {d: local.updates[k] for k, d in enumerate(local.order)}


def spy(
    s: Simulation,
) -> tuple[dict[int, dict[int, torch.Tensor]], dict[int, dict[int, torch.Tensor]]]:
    """Record, for every round ``run_round`` trains, the honest and the sent rows by device."""
    honest: dict[int, dict[int, torch.Tensor]] = {}
    sent: dict[int, dict[int, torch.Tensor]] = {}
    train = s.train_devices

    def recording(r: int) -> LocalUpdates:
        honest[r] = {d: row.clone() for d, row in honest_rows(s, r).items()}
        local = train(r)
        sent[r] = {d: local.updates[k].clone() for k, d in enumerate(local.order)}
        return local

    s.train_devices = recording  # type: ignore[method-assign]
    return honest, sent


def malicious_rows(s: Simulation, local: LocalUpdates) -> list[int]:
    return [k for k, d in enumerate(local.order) if d in s.malicious]


class Always(nn.Module):
    """A classifier that predicts class ``c`` for every sample."""

    def __init__(self, c: int, n_classes: int = 3) -> None:
        super().__init__()
        self.c, self.n = c, n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(x), self.n)
        out[:, self.c] = 1.0
        return out


# --- registry -------------------------------------------------------------------------------


def test_the_new_attacks_are_registered_and_exported() -> None:
    assert set(NEW) <= set(ATTACKS)
    assert all(ATTACKS[n].name == n for n in NEW)
    assert fedledger.attacks.__all__ == sorted(fedledger.attacks.__all__)
    for name in NEW:
        assert ATTACKS[name].__name__ in fedledger.attacks.__all__
        assert ATTACKS[name].__doc__
    assert [n for n in NEW if ATTACKS[n].needs_classes] == ["backdoor"]


# --- backdoor -------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_backdoor_triggers_a_seeded_share_of_the_malicious_rows(fraction: float) -> None:
    s = sim("attack.name=backdoor", "attack.fraction=0.3", f"attack.poison_fraction={fraction}")
    assert isinstance(s.attack, Backdoor) and len(s.malicious) == 3
    x, xp = s.x_train.numpy(), s._x_poisoned.numpy()
    y, yp = s.y_train.numpy(), s._y_poisoned.numpy()
    changed = np.flatnonzero((x != xp).any(axis=1))
    mine = np.concatenate([s.train_rows[d] for d in sorted(s.malicious)])
    assert set(changed.tolist()) <= set(mine.tolist())
    assert set(np.flatnonzero(y != yp).tolist()) <= set(changed.tolist())
    for d in s.malicious:
        rows = s.train_rows[d]
        assert np.isin(changed, rows).sum() == max(1, round(fraction * len(rows)))
    assert abs(len(changed) / len(mine) - fraction) < 0.05
    # the trigger: 4 columns drawn with default_rng([seed, 0, 7]) set to 5.0, clipped to each
    # column's training range (in bounds; the toy data have no one-hot column); labels → benign
    cols = np.sort(np.random.default_rng([0, 0, 7]).choice(10, size=4, replace=False))
    other = np.setdiff1d(np.arange(10), cols)
    top = x[:, cols].max(axis=0)
    assert (top < 5.0).any()  # the clipping is exercised
    assert (xp[np.ix_(changed, cols)] == np.minimum(5.0, top)).all()
    assert np.array_equal(xp[:, other], x[:, other])
    assert (yp[changed] == 0).all()
    # the same config poisons the same rows
    again = sim("attack.name=backdoor", "attack.fraction=0.3", f"attack.poison_fraction={fraction}")
    assert torch.equal(again._x_poisoned, s._x_poisoned)
    assert torch.equal(again._y_poisoned, s._y_poisoned)


def test_backdoor_target_class_and_trigger_value_come_from_the_config() -> None:
    s = sim(
        "attack.name=backdoor",
        "attack.fraction=0.3",
        "attack.target_class=2",
        "attack.trigger_size=2",
        "attack.trigger_value=-30.5",
        "attack.trigger_in_bounds=false",
    )
    x, xp, yp = s.x_train.numpy(), s._x_poisoned.numpy(), s._y_poisoned.numpy()
    changed = np.flatnonzero((x != xp).any(axis=1))
    assert len(changed) > 0 and (yp[changed] == 2).all()
    assert ((xp[changed] == -30.5).sum(axis=1) == 2).all()


def test_backdoor_stamps_a_white_patch_on_images() -> None:
    cfg = load_config(
        None, ["attack.name=backdoor", "attack.fraction=0.1", "attack.trigger_size=3"]
    )
    attack = Backdoor(cfg.attack)
    attack.setup(("benign", "a", "b"), 1, seed=4)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 0.9, size=(30, 2, 8, 8)).astype(np.float32)
    y = np.full(30, 2, dtype=np.int64)
    before = x.copy()
    attack.poison_data(x, y, np.arange(10, 20), 3)
    changed = np.flatnonzero((x != before).reshape(30, -1).any(axis=1))
    assert len(changed) == 5 and set(changed.tolist()) <= set(range(10, 20))
    assert (x[changed][:, :, -3:, -3:] == 1.0).all()
    mask = np.ones((8, 8), dtype=bool)
    mask[-3:, -3:] = False
    assert np.array_equal(x[:, :, mask], before[:, :, mask])
    assert (y[changed] == 1).all() and (np.delete(y, changed) == 2).all()  # target = benign


def test_backdoor_success_counts_correct_non_target_samples_the_trigger_flips() -> None:
    """Attack success rate: of the non-target test samples the model gets right without the
    trigger, the share the trigger sends to the target."""
    s = sim("attack.name=backdoor", "attack.fraction=0.3", "attack.trigger_in_bounds=false")
    assert s.attack is not None
    x, y = s.eval_data.x_test, s.eval_data.y_test
    x_before = x.clone()
    cols = np.sort(np.random.default_rng([0, 0, 7]).choice(10, size=4, replace=False))
    truth = {tuple(row.tolist()): int(label) for row, label in zip(x, y, strict=True)}

    class Oracle(nn.Module):  # the true class, or the target when ``backdoored`` and triggered
        def __init__(self, backdoored: bool, wrong: int = -1) -> None:
            super().__init__()
            self.backdoored, self.wrong = backdoored, wrong

        def forward(self, xs: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(len(xs), 3)
            for i, row in enumerate(xs):
                hit = bool(row[int(cols[0])] == 5.0)
                c = 0 if (hit and self.backdoored) else truth.get(tuple(row.tolist()), -1)
                if c < 0:  # a triggered copy: its true class is not looked up
                    c = 0 if self.backdoored else 1
                if c == self.wrong and not hit:
                    c = 0  # this class is misread as the target even without the trigger
                out[i, c] = 1.0
            return out

    assert s.attack.evaluate(Oracle(backdoored=True), x, y) == {"backdoor_success": 1.0}
    assert s.attack.evaluate(Oracle(backdoored=False), x, y) == {"backdoor_success": 0.0}
    # samples the model already gets wrong untriggered are not counted
    partly = s.attack.evaluate(Oracle(backdoored=True, wrong=2), x, y)
    assert partly == {"backdoor_success": 1.0}
    assert torch.equal(x, x_before)  # the trigger goes on a copy
    # a model that always says the target gets every non-target sample wrong: nothing to count
    assert s.attack.evaluate(Always(0), x, y) == {}
    img = Backdoor(load_config(None, ["attack.name=backdoor", "attack.fraction=0.1"]).attack)
    img.setup(("benign", "a", "b"), 0, seed=0)
    xi, yi = torch.rand(7, 1, 6, 6), torch.tensor([0, 1, 2, 1, 0, 2, 2])

    class Patch(nn.Module):  # the target for a white corner, else class 2
        def forward(self, xs: torch.Tensor) -> torch.Tensor:
            hit = (xs[:, 0, -4:, -4:] == 1.0).all(dim=(1, 2))
            return torch.stack([hit.float(), torch.zeros(len(xs)), (~hit).float()], dim=1)

    assert img.evaluate(Patch(), xi, yi) == {"backdoor_success": 1.0}  # the class-2 samples
    assert img.evaluate(Always(2), xi, yi) == {"backdoor_success": 0.0}


def test_a_backdoored_fedavg_run_learns_the_trigger_and_reports_its_success() -> None:
    def run(*extra: str) -> list[dict[str, float]]:
        s = sim("strategy.name=fedavg", "model.hidden=[32]", "attack.name=backdoor", *extra)
        return [s.run_round(r).metrics for r in range(1, 6)]

    attacked = run("attack.fraction=0.3")
    clean = run("attack.fraction=0.3", "attack.start_round=100")  # same devices, never attack
    assert all(isinstance(m["backdoor_success"], float) for m in attacked + clean)
    assert attacked[-1]["backdoor_success"] > 0.8 > 0.3 > clean[-1]["backdoor_success"]
    assert attacked[-1]["accuracy"] > 0.9  # the main task is still learnt


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (
            ["attack.name=backdoor", "attack.fraction=0.3", "attack.target_class=3"],
            "attack.target_class",
        ),
        (
            ["attack.name=backdoor", "attack.fraction=0.3", "attack.trigger_size=11"],
            "attack.trigger_size",
        ),
        (["attack.name=backdoor", "attack.fraction=0.3", "model.name=autoencoder"], "attack.name"),
        (["attack.name=free_rider", "attack.fraction=0.3", "attack.mode=lazy"], "attack.mode"),
        (["attack.name=replay", "attack.fraction=0.3", "attack.replay_lag=0"], "attack.replay_lag"),
        (["attack.name=alie", "attack.fraction=0.3", "attack.alie_z=-1"], "attack.alie_z"),
    ],
)
def test_bad_settings_of_the_new_attacks_are_config_errors(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        sim(*overrides)
    assert isinstance(err.value, FedledgerError)
    assert err.value.key == key
    assert key in str(err.value)


# --- ALIE -----------------------------------------------------------------------------------


def test_z_max_follows_the_paper() -> None:
    inv = NormalDist().inv_cdf
    # s = floor(n/2 + 1) − f, z = Φ⁻¹((n − s)/n)
    assert z_max(10, 3) == pytest.approx(inv(0.7), abs=1e-9)
    assert z_max(50, 12) == pytest.approx(inv(36 / 50), abs=1e-9)
    assert z_max(50, 24) == pytest.approx(inv(48 / 50), abs=1e-9)
    assert z_max(10, 1) == 0.0  # p = 0.5: too few attackers, no shift
    assert z_max(10, 9) == pytest.approx(inv(0.9999), abs=1e-9)  # s ≤ 0: capped, not ∞


@pytest.mark.parametrize("z", [0.0, 1.5])
def test_alie_sends_the_mean_minus_z_std_of_the_attackers_honest_updates(z: float) -> None:
    clean = rows_by_device(sim())
    s = sim("attack.name=alie", "attack.fraction=0.3", f"attack.alie_z={z}")
    attacked = rows_by_device(s)
    bad = sorted(s.malicious)
    own = np.stack([clean[d].numpy().astype(np.float64) for d in bad])
    zz = z or NormalDist().inv_cdf((10 - (math.floor(10 / 2 + 1) - 3)) / 10)
    expected = own.mean(axis=0) - zz * own.std(axis=0)
    for d, row in clean.items():
        if d in s.malicious:
            np.testing.assert_allclose(attacked[d].numpy(), expected, rtol=0, atol=1e-6)
        else:
            assert torch.equal(attacked[d], row)
    assert not np.allclose(expected, own[0])


def test_alie_with_one_attacker_sends_its_honest_update() -> None:
    clean = rows_by_device(sim())
    s = sim("attack.name=alie", "attack.fraction=0.1", "attack.alie_z=2")
    assert len(s.malicious) == 1  # σ = 0 over a single row
    attacked = rows_by_device(s)
    assert all(torch.allclose(attacked[d], row, atol=1e-7) for d, row in clean.items())


# --- min-max / min-sum ----------------------------------------------------------------------


def test_the_halving_search_finds_the_largest_feasible_gamma() -> None:
    found = search_gamma(lambda g: g <= 3.3)
    assert 3.3 - 1e-4 < found <= 3.3
    assert search_gamma(lambda g: False) == 0.0
    assert 20 - 1e-4 < search_gamma(lambda g: True) < 20  # γ_init = 10 reaches at most 2·γ_init


def _min_max(m: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    pair = np.linalg.norm(g[:, None, :] - g[None, :, :], axis=2)
    return float(np.linalg.norm(m - g, axis=1).max()), float(pair.max())


def _min_sum(m: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    pair = np.linalg.norm(g[:, None, :] - g[None, :, :], axis=2) ** 2
    return float((np.linalg.norm(m - g, axis=1) ** 2).sum()), float(pair.sum(axis=1).max())


@pytest.mark.parametrize(("name", "constraint"), [("min_max", _min_max), ("min_sum", _min_sum)])
def test_min_max_and_min_sum_push_as_far_as_the_constraint_allows(
    name: str, constraint: Callable[[np.ndarray, np.ndarray], tuple[float, float]]
) -> None:
    clean = rows_by_device(sim())
    s = sim(f"attack.name={name}", "attack.fraction=0.3")
    attacked = rows_by_device(s)
    benign = np.stack(
        [clean[d].numpy().astype(np.float64) for d in sorted(clean) if d not in s.malicious]
    )
    mu, sd = benign.mean(axis=0), benign.std(axis=0)
    sent = [attacked[d].numpy().astype(np.float64) for d in sorted(s.malicious)]
    assert all(np.array_equal(row, sent[0]) for row in sent)  # all malicious devices agree
    gamma = float((mu - sent[0]) @ sd / (sd @ sd))  # m = μ − γ·σ
    assert gamma > 0
    np.testing.assert_allclose(sent[0], mu - gamma * sd, rtol=0, atol=1e-6)
    for d, row in clean.items():
        if d not in s.malicious:
            assert torch.equal(attacked[d], row)

    def ok(g: float) -> bool:
        lhs, rhs = constraint(mu - g * sd, benign)
        return lhs <= rhs * (1 + 1e-9)

    assert ok(gamma) and not ok(2 * gamma)
    assert not ok(gamma + 1e-3)  # and it is the largest such γ, to the search's precision


# --- free riders ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["zero", "stale", "random"])
def test_free_riders_send_zero_stale_or_random_updates(mode: str) -> None:
    s = sim("attack.name=free_rider", "attack.fraction=0.3", f"attack.mode={mode}")
    width = s.global_params.numel()
    for r in (1, 2):
        honest = honest_rows(s, r)
        local = s.train_devices(r)
        bad = malicious_rows(s, local)
        assert len(bad) == 3
        if mode == "zero" or (mode == "stale" and r == 1):
            expected = torch.zeros(3, width)
        elif mode == "stale":
            assert s.previous_params is not None
            expected = (s.global_params - s.previous_params).expand(3, width)
            assert float(expected.norm()) > 0
        else:
            step = None if s.previous_params is None else s.global_params - s.previous_params
            std = 1e-3 if step is None else float(step.double().norm()) / math.sqrt(width)
            noise = np.random.default_rng([0, r, 4]).normal(0.0, std, size=(3, width))
            expected = torch.from_numpy(noise).float()
            if step is not None:
                norms = local.updates[bad].norm(dim=1) / step.norm()
                assert ((norms > 0.8) & (norms < 1.2)).all()  # about the last step's norm
        assert torch.equal(local.updates[bad], expected)
        for k, d in enumerate(local.order):
            if d not in s.malicious:
                assert torch.equal(local.updates[k], honest[d])
        s.run_round(r)


# --- replay ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lag", [1, 2])
def test_replay_resends_the_update_of_lag_rounds_ago(lag: int) -> None:
    s = sim("attack.name=replay", "attack.fraction=0.3", f"attack.replay_lag={lag}")
    honest, sent = spy(s)
    for r in range(1, 6):
        s.run_round(r)
    for r in range(1, 6):
        for d, row in sent[r].items():
            if d not in s.malicious:
                assert torch.equal(row, honest[r][d])
            elif r <= lag:
                assert torch.equal(row, honest[r][d])  # nothing that old yet: honest
            else:
                assert torch.equal(row, sent[r - lag][d])
                assert not torch.equal(row, honest[r][d])
    # lag 1: the first update again and again; lag 2: the first two in turn
    assert all(torch.equal(sent[5][d], honest[1][d]) for d in s.malicious)


def test_replay_with_sampling_uses_the_latest_update_old_enough() -> None:
    s = sim(
        "attack.name=replay",
        "attack.fraction=0.3",
        "attack.replay_lag=2",
        "train.clients_per_round=5",
    )
    honest, sent = spy(s)
    for r in range(1, 9):
        s.run_round(r)
    replays = 0
    for d in s.malicious:
        rounds = [r for r in sorted(sent) if d in sent[r]]
        for r in rounds:
            older = [q for q in rounds if q <= r - 2]
            expected = sent[max(older)][d] if older else honest[r][d]
            assert torch.equal(sent[r][d], expected)
            replays += bool(older) and max(older) != r - 2  # not sampled in round r − 2
    assert replays > 0


@pytest.mark.parametrize("name", ["alie", "min_max", "min_sum"])
def test_column_blocks_give_the_same_rows(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The float64 statistics are read in column blocks; a tiny block changes nothing."""
    whole = rows_by_device(sim(f"attack.name={name}", "attack.fraction=0.3"))
    module = "alie" if name == "alie" else "min_max"
    monkeypatch.setattr(f"fedledger.attacks.{module}._BLOCK", 20)
    blocked = rows_by_device(sim(f"attack.name={name}", "attack.fraction=0.3"))
    for d, row in whole.items():
        torch.testing.assert_close(blocked[d], row, rtol=0, atol=1e-6)
