"""The benign-shift probe and rule: each update's model, one feature at a time set to its
largest value, against the validators' attack rows; a group far above the rest is flagged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load as load_tensors
from torch import nn

from fedledger.assemble import build_simulation, model_spec
from fedledger.config import StrategyConfig, load_config
from fedledger.errors import FedledgerError
from fedledger.fl.enclave.service import EnclaveService, enclave_config
from fedledger.fl.params import ParamLayout
from fedledger.fl.probe import benign_shift, extreme_rows
from fedledger.fl.secure.enclave_mode import encode_round_context
from fedledger.strategies.base import RoundContext
from fedledger.strategies.screen import AnomalyScreen
from fedledger.strategies.shift_groups import HOLD, SHIFT_FLOOR, SHIFT_GAP, shift_groups
from tests.conftest import make_dataset


def test_extreme_rows_set_one_column_at_a_time_and_clear_its_one_hot_group() -> None:
    x = torch.tensor([[0.5, 1.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 1.0]])
    high = torch.tensor([3.0, 1.0, 1.0, 1.0])
    groups = torch.tensor([-1, 0, 0, 0])  # column 0 numeric, 1-3 one protocol
    rows = extreme_rows(x, high, groups)
    assert rows.shape == (5 * 2, 4)
    assert torch.equal(rows[:2], x)
    assert torch.equal(rows[2:4], torch.tensor([[3.0, 1.0, 0.0, 0.0], [3.0, 0.0, 0.0, 1.0]]))
    assert torch.equal(rows[6:8], torch.tensor([[0.5, 0.0, 1.0, 0.0], [-1.0, 0.0, 1.0, 0.0]]))
    assert torch.equal(rows[8:10], torch.tensor([[0.5, 0.0, 0.0, 1.0], [-1.0, 0.0, 0.0, 1.0]]))


def test_benign_shift_is_the_mean_rise_of_the_benign_probability_on_the_attack_rows() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3))
    layout = ParamLayout.of(model)
    base = layout.flatten(dict(model.named_parameters())).detach().clone()
    updates = 0.3 * torch.randn(2, base.numel())
    x = torch.randn(6, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 1])  # class 1 is benign: rows 0, 2, 3 are attacks
    high = torch.tensor([2.0, 1.0, 1.0])
    groups = torch.tensor([-1, 0, 0])
    got = benign_shift(model, layout, base, updates, x, y, high, groups, benign=1)
    assert torch.equal(layout.flatten(dict(model.named_parameters())), base)  # left at base
    attacks = x[y != 1]
    for i in range(2):
        layout.load_into(model, base + updates[i])
        with torch.no_grad():
            before = torch.softmax(model(attacks).double(), 1)[:, 1]
            for c in range(3):
                changed = attacks.clone()
                if c > 0:
                    changed[:, 1:] = 0.0
                changed[:, c] = high[c]
                after = torch.softmax(model(changed).double(), 1)[:, 1]
                assert got[i, c].item() == pytest.approx((after - before).mean().item(), abs=1e-6)
    # more attack rows than the probe takes: `rows` of them, evenly spaced in their order
    many_x, many_y = torch.randn(40, 3), torch.tensor([0, 1] * 20)  # 20 attack rows
    few = benign_shift(model, layout, base, updates, many_x, many_y, high, groups, 1, rows=5)
    chosen = torch.nonzero(many_y != 1).flatten()[torch.tensor([0, 5, 10, 14, 19])]
    alone = benign_shift(
        model, layout, base, updates, many_x[chosen], many_y[chosen], high, groups, 1, rows=0
    )
    assert torch.equal(few, alone)
    everything = benign_shift(model, layout, base, updates, many_x, many_y, high, groups, 1, 0)
    assert not torch.equal(everything, few)
    # no attack rows: nothing to measure
    none = benign_shift(model, layout, base, updates, x[:1], y[1:2], high, groups, benign=1)
    assert torch.equal(none, torch.zeros(2, 3, dtype=torch.float64))


def round_with_group(step: float, k: int = 40, size: int = 8, seed: int = 0) -> torch.Tensor:
    """``[k, 5]``: small noise everywhere; on column 2 the first ``size`` rows stand ``step``
    robust units above the rest, which are evenly spaced (in units of the column's spread
    plus the floor, the spread taken with the group above everyone, where it stays)."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 0.01, size=(k, 5))
    col = values[:, 2]
    col[size:] = -np.linspace(0.0, 0.02, k - size)[rng.permutation(k - size)]
    col[:size] = 1.0  # above everyone: where the group is does not change the spread
    mad = np.median(np.abs(col - np.median(col)))
    scale = 1.4826 * mad + SHIFT_FLOOR
    col[:size] = col[size:].max() + step * scale + np.arange(size)[::-1] * 1e-5
    return torch.from_numpy(values)


def test_a_group_far_above_the_rest_on_one_column_is_found_and_nobody_else() -> None:
    found = shift_groups(round_with_group(2 * SHIFT_GAP))
    assert found == {2: list(range(8))}
    assert shift_groups(round_with_group(0.8 * SHIFT_GAP)) == {}
    assert shift_groups(round_with_group(2 * SHIFT_GAP), gap=0) == {}  # the rule off
    assert shift_groups(round_with_group(2 * SHIFT_GAP, k=9, size=5)) == {}  # too few rows
    nan = round_with_group(2 * SHIFT_GAP)
    nan[30] = float("nan")  # a non-finite row counts as 0: the group is still found
    assert shift_groups(nan) == {2: list(range(8))}


def test_a_flagged_column_stays_flagged_above_its_largest_step_at_a_quarter_of_the_gap() -> None:
    weak = round_with_group(0.5 * SHIFT_GAP)
    assert shift_groups(weak) == {}
    assert shift_groups(weak, held=frozenset({2})) == {2: list(range(8))}
    below = round_with_group(0.9 * HOLD * SHIFT_GAP)
    assert shift_groups(below, held=frozenset({2})) == {}


def test_a_new_group_is_the_widest_that_stands_the_gap_clear() -> None:
    """A backdoor's updates differ in strength: its strongest few stand apart from the rest of
    them first; the group is all that stand the gap clear of the honest rows."""
    values = round_with_group(3 * SHIFT_GAP, size=12)
    col = values[:, 2]
    col[:5] += 10 * float(col[:12].max() - col[12:].max())  # five far stronger than the other 7
    assert shift_groups(values) == {2: list(range(12))}


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.1, 10.0))
def test_groups_follow_the_rows_and_ignore_a_common_offset_and_scale(
    seed: int, factor: float
) -> None:
    values = round_with_group(2 * SHIFT_GAP, seed=seed)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(40))
    moved = shift_groups(values[perm])
    assert {c: sorted(int(perm[i]) for i in rows) for c, rows in moved.items()} == {
        2: list(range(8))
    }
    shifted = shift_groups(values + 0.37)
    assert shifted == {2: list(range(8))}
    # a larger scale only makes the floor matter less: the group stays
    assert shift_groups(values * (1.0 + factor)) == {2: list(range(8))}


def test_the_screen_flags_a_benign_shift_group_and_keeps_its_column_for_the_next_round() -> None:
    k, params = 40, 6
    updates = 0.01 * torch.randn(k, params, generator=torch.Generator().manual_seed(1))
    zero = torch.zeros(params)
    strong = RoundContext(round=1, devices=tuple(range(k)), benign_shift=round_with_group(30.0))
    screen = AnomalyScreen(column_gap=0, shift_gap=SHIFT_GAP)
    screen.aggregate(zero, updates, torch.ones(k), strong)
    assert set(range(8)) <= set(screen.flagged) and screen.shift_columns == [2]
    weak = RoundContext(round=2, devices=tuple(range(k)), benign_shift=round_with_group(3.0))
    again = AnomalyScreen(column_gap=0, shift_gap=SHIFT_GAP)
    again.load_state_dict(screen.state_dict())  # the enclave reloads the state every round
    again.aggregate(zero, updates, torch.ones(k), weak)
    assert set(range(8)) <= set(again.flagged) and again.shift_columns == [2]
    fresh = AnomalyScreen(column_gap=0, shift_gap=SHIFT_GAP)
    fresh.aggregate(zero, updates, torch.ones(k), weak)
    assert not set(range(8)) & set(fresh.flagged) and fresh.shift_columns == []
    off = AnomalyScreen(column_gap=0, shift_gap=0)  # the rule turned off
    assert not off.needs_benign_shift and AnomalyScreen().needs_benign_shift  # on by default
    off.aggregate(zero, updates, torch.ones(k), strong)
    assert off.shift_columns == [] and not set(range(8)) & set(off.flagged)
    legacy = {k: v for k, v in screen.state_dict().items() if k != "shift_columns"}
    off.load_state_dict(legacy)  # a checkpoint from before the rule
    assert off.shift_columns == []
    with pytest.raises(FedledgerError, match="shift gap"):
        AnomalyScreen(shift_gap=-1)


def test_the_screen_of_the_default_config_is_the_screen_of_the_default_arguments() -> None:
    """The config's defaults and the class's are written in two places; they agree."""
    assert vars(AnomalyScreen.from_config(StrategyConfig())) == vars(AnomalyScreen())


def test_the_enclave_gets_what_the_engine_measures_the_benign_shift_with() -> None:
    """The plain path and the enclave compute the rule's measure from the same inputs: the
    round context the host sends carries each column's largest value, its one-hot group and
    the benign class, and from them and the root rows the enclave gets the engine's numbers."""
    cfg = load_config(None, ["ledger.backend=none"])  # the rule is on by default
    sim = build_simulation(cfg, data=make_dataset(n_clients=12, n_classes=3))
    assert sim.strategy.needs_benign_shift and sim.root_rows is not None
    local = sim.train_devices(1)
    ctx = sim.round_context(1, local.order, local.updates)
    assert ctx.benign_shift is not None and ctx.benign_shift.shape == (12, sim.x_train.shape[1])
    assert bool((ctx.benign_shift != 0).any())
    sent = dict(load_tensors(encode_round_context(local.order, sim.round_inputs(1))))
    spec = model_spec(cfg, sim.data, sim.task)  # the model the enclave rebuilds
    config = enclave_config(
        "enclave",
        sim.layout.total,
        cfg.strategy.model_dump(),
        cfg.security.model_dump(),
        sim.layout.sizes,
        model=spec,
    )
    service = EnclaveService(config, 0)
    accepted = list(range(len(local.order)))
    inside = service._round_context(
        1, sent, list(local.order), accepted, sim.strategy, sim.global_params, local.updates
    ).benign_shift
    assert inside is not None
    assert torch.equal(inside, ctx.benign_shift)
    off = build_simulation(
        load_config(None, ["ledger.backend=none", "strategy.screen_shift_gap=0"]),
        data=make_dataset(n_clients=12, n_classes=3),
    )
    assert off.shift_inputs() is None and off.round_inputs(1).shift is None


def test_an_honest_update_in_a_group_of_flagged_noise_updates_is_not_flagged_with_them() -> None:
    """Noise updates answer many columns erratically and form benign-shift groups; an honest
    update that falls into one is not flagged for it when another rule flags the noise
    updates (on NSL-KDD the column rule does, on their rare columns): the groups that flag
    are sought again among the updates no other rule flagged, where one update makes none."""
    k, params = 40, 6
    updates = 0.01 * torch.randn(k, params, generator=torch.Generator().manual_seed(2))
    updates[:8] = float("nan")  # eight updates another rule flags (here: non-finite)
    shift = round_with_group(30.0, size=9)  # the eight and honest row 8 on column 2
    ctx = RoundContext(round=1, devices=tuple(range(k)), benign_shift=shift)
    screen = AnomalyScreen(column_gap=0, direction=False, shift_gap=SHIFT_GAP)
    screen.aggregate(torch.zeros(params), updates, torch.ones(k), ctx)
    assert set(range(8)) <= set(screen.flagged) and 8 not in screen.flagged
    assert screen.shift_columns == []
