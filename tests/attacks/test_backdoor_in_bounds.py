"""The in-bounds tabular trigger (Pleiter et al. 2023, "Tabdoor"): a trigger real traffic
could carry, so numeric values inside the training range and one value per one-hot group."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedledger.assemble import build_simulation
from fedledger.attacks import Backdoor
from fedledger.config import DataConfig, load_config
from fedledger.data import build_federated
from fedledger.data.types import FeatureDomain
from fedledger.errors import ConfigError
from tests.data.files import nsl_row, write_text

# columns 0-2 numeric (2 is constant), 3-5 one-hot group 0 (5: the "unknown" bucket no training
# row sets), 6-9 one-hot group 1
LOW = np.array([-1.0, -2.0, 0.0, 0, 0, 0, 0, 0, 0, 0], dtype=np.float32)
HIGH = np.array([2.0, 7.0, 0.0, 1, 1, 0, 1, 1, 1, 1], dtype=np.float32)
GROUPS = np.array([-1, -1, -1, 0, 0, 0, 1, 1, 1, 1])
DOMAIN = FeatureDomain(LOW, HIGH, GROUPS)


def backdoor(seed: int, *overrides: str, domain: FeatureDomain | None = DOMAIN) -> Backdoor:
    cfg = load_config(None, ["attack.name=backdoor", "attack.fraction=0.2", *overrides])
    attack = Backdoor(cfg.attack)
    attack.setup(("normal", "dos"), 0, seed, domain)
    return attack


def first_draw(seed: int, size: int = 4) -> np.ndarray:
    return np.random.default_rng([seed, 0, 7]).choice(10, size=size, replace=False)


def expected_columns(seed: int, size: int = 4) -> list[int]:
    """The definition: the draw's columns in draw order, then a permutation of the same
    stream, skipping columns no row varies and second columns of a one-hot group."""
    rng = np.random.default_rng([seed, 0, 7])
    drawn = rng.choice(10, size=size, replace=False)
    chosen: list[int] = []
    for c in [*drawn.tolist(), *rng.permutation(10).tolist()]:
        taken = {int(GROUPS[k]) for k in chosen if GROUPS[k] >= 0}
        free = GROUPS[c] < 0 or int(GROUPS[c]) not in taken
        if len(chosen) < size and c not in chosen and HIGH[c] > LOW[c] and free:
            chosen.append(c)
    return sorted(chosen)


def realisable(cols: np.ndarray) -> bool:
    groups = GROUPS[cols][GROUPS[cols] >= 0]
    return bool((HIGH[cols] > LOW[cols]).all() and len(set(groups)) == len(groups))


def test_an_in_bounds_trigger_takes_columns_rows_vary_one_per_one_hot_group() -> None:
    kept = 0
    for seed in range(60):
        cols = backdoor(seed).columns(10)
        assert len(set(cols.tolist())) == 4 and realisable(cols), seed
        assert cols.tolist() == expected_columns(seed), seed
        drawn = first_draw(seed)
        if realisable(drawn):  # nothing to replace: the same columns as the plain trigger
            assert np.array_equal(cols, np.sort(drawn)), seed
            kept += 1
        plain = backdoor(seed, "attack.trigger_in_bounds=false").columns(10)
        assert np.array_equal(plain, np.sort(drawn))
        assert np.array_equal(backdoor(seed, domain=None).columns(10), np.sort(drawn))
    assert 0 < kept < 60  # both branches are exercised


def test_an_in_bounds_trigger_writes_a_value_in_range_and_clears_the_one_hot_group() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=(40, 10)).astype(np.float32)
    x[:, 3:] = 0.0
    x[np.arange(40), 3 + rng.integers(0, 2, size=40)] = 1.0  # one value of group 0 per row
    x[np.arange(40), 6 + rng.integers(0, 4, size=40)] = 1.0  # and one of group 1
    for seed in range(30):
        for value in (5.0, -9.0, 0.5):
            attack = backdoor(seed, f"attack.trigger_value={value}")
            cols = attack.columns(10)
            stamped = x.copy()
            attack.trigger(stamped)
            touched = np.unique(np.concatenate([DOMAIN.group_of(int(c)) for c in cols]))
            untouched = np.setdiff1d(np.arange(10), touched)
            assert np.array_equal(stamped[:, untouched], x[:, untouched])
            for c in cols:
                if GROUPS[c] < 0:
                    assert (stamped[:, c] == np.clip(value, LOW[c], HIGH[c])).all()
                else:
                    group = DOMAIN.group_of(int(c))
                    assert (stamped[:, c] == 1.0).all()
                    assert (stamped[:, group].sum(axis=1) == 1.0).all()
            plain = x.copy()
            backdoor(
                seed, f"attack.trigger_value={value}", "attack.trigger_in_bounds=false"
            ).trigger(plain)
            assert (plain[:, np.sort(first_draw(seed))] == value).all()


def test_an_in_bounds_trigger_needs_enough_columns_that_vary() -> None:
    with pytest.raises(ConfigError, match=r"attack\.trigger_size.*needs 6 columns.*have 4"):
        backdoor(0, "attack.trigger_size=6").columns(10)  # 0, 1, one of each group
    assert (
        len(backdoor(0, "attack.trigger_size=6", "attack.trigger_in_bounds=false").columns(10)) == 6
    )


def test_on_nsl_kdd_rows_the_trigger_gives_records_the_pipeline_could_produce(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    labels = ["normal", "neptune", "satan", "guess_passwd", "rootkit"]
    write_text(
        tmp_path / "KDDTrain+.txt", "\n".join(nsl_row(rng, labels[i % 5]) for i in range(80))
    )
    write_text(tmp_path / "KDDTest+.txt", "\n".join(nsl_row(rng, labels[i % 5]) for i in range(30)))
    fed = build_federated(DataConfig(name="nsl-kdd", dir=str(tmp_path), partition="iid", clients=4))
    names, groups = fed.feature_names, np.asarray(fed.feature_groups)
    assert len(groups) == len(names) == fed.x_train.shape[1]
    assert [n for n, g in zip(names, groups, strict=True) if g < 0] == list(names[:38])
    for g, feature in enumerate(("protocol_type", "service", "flag")):
        assert {n.split("=")[0] for n in np.asarray(names)[groups == g]} == {feature}
    domain = fed.feature_domain()
    assert domain is not None
    assert np.array_equal(domain.low, fed.x_train.min(axis=0))
    assert np.array_equal(domain.high, fed.x_train.max(axis=0))
    onehot = groups >= 0
    for seed in range(20):
        attack = backdoor(seed, domain=domain)
        x = fed.x_test.copy()
        attack.trigger(x)
        for g in range(3):  # still one value (or none) per categorical feature
            assert set(np.unique(x[:, groups == g].sum(axis=1))) <= {0.0, 1.0}
        cols = attack.columns(x.shape[1])
        assert (x[:, cols] >= domain.low[cols]).all() and (x[:, cols] <= domain.high[cols]).all()
        assert set(np.unique(x[:, cols[onehot[cols]]])) <= {1.0}
    # a run hands the backdoor its dataset's domain
    for flag, wired in (("true", True), ("false", False)):
        cfg = load_config(
            None,
            ["attack.name=backdoor", "attack.fraction=0.5", f"attack.trigger_in_bounds={flag}"],
        )
        run_attack = build_simulation(cfg, data=fed).attack
        assert isinstance(run_attack, Backdoor)
        assert (run_attack.domain is not None) is wired
        if run_attack.domain is not None:
            assert np.array_equal(run_attack.domain.groups, groups)
