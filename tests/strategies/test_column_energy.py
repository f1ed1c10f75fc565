"""Coordinated input columns: a group that pours its first-layer change into a column the rest
barely touch is flagged (a trigger backdoor); honest groups, small groups, majorities, scaled
updates and models without a dense first layer are not; and on NSL-KDD the default screen
finds exactly the backdoor devices."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.config import Config
from fedledger.errors import FedledgerError
from fedledger.strategies.base import RoundContext
from fedledger.strategies.column_energy import (
    Group,
    coordinated_groups,
    corroborated,
    first_layer,
)
from fedledger.strategies.screen import AnomalyScreen

H, F = 4, 10
SIZES = (H * F, H, 3 * H, 3)  # a dense [H, F] layer, its bias, then [3, H] and its bias
RARE = 7  # an input column honest devices almost never see


def round_of(
    k: int = 20, group: int = 6, boost: float = 1.0, rest: float = 1e-4, seed: int = 0
) -> torch.Tensor:
    """``k`` updates whose first layer touches column ``RARE`` ``rest`` times as much as a
    trained column; the first ``group`` put ``boost`` times a trained column's on it."""
    g = torch.Generator().manual_seed(seed)
    p = sum(SIZES)
    rows = torch.randn(k, p, generator=g, dtype=torch.float64)
    w = rows[:, : H * F].reshape(k, H, F)
    w[:, :, RARE] *= rest
    w[:group, :, RARE] = boost * torch.randn(group, H, generator=g, dtype=torch.float64)
    return rows


def stepped(
    decades: float, k: int = 20, group: int = 6, columns: tuple[int, ...] = (RARE,)
) -> torch.Tensor:
    """``k`` updates with unit first-layer weights, except ``columns`` of all but the first
    ``group``, whose energy there is ``10^-decades`` of theirs."""
    rows = torch.randn(k, sum(SIZES), generator=torch.Generator().manual_seed(3))
    w = rows[:, : H * F].reshape(k, H, F)
    w[:] = 1.0
    for j in columns:
        w[group:, :, j] = 10 ** (-decades / 2)
    return rows


def groups_of(rows: torch.Tensor) -> dict[int, list[int]]:
    return {j: g.rows for j, g in coordinated_groups(rows, SIZES).items()}


def test_a_group_on_a_rare_column_is_found_and_nobody_else() -> None:
    assert groups_of(round_of()) == {RARE: list(range(6))}
    (found,) = coordinated_groups(stepped(2.75), SIZES).values()
    # shares, not energies: the group also holds a tenth of its energy there, the rest less
    assert found.rows == list(range(6)) and 2.6 < found.gap < 2.8


def test_honest_rounds_small_groups_and_majorities_are_not_flagged() -> None:
    assert groups_of(round_of(group=0)) == {}
    assert groups_of(round_of(group=4)) == {}  # fewer than 5
    assert groups_of(round_of(group=11)) == {}  # the rest is the minority
    # a group about two decades above the rest (energy ∝ value²): honest non-IID structure
    assert groups_of(round_of(rest=0.1)) == {}
    assert groups_of(stepped(2.45)) == {}
    assert list(groups_of(round_of(rest=0.01))) == [RARE]  # four decades


def test_a_column_the_rest_never_set_is_not_a_trigger() -> None:
    """Devices whose traffic never sets a column have exactly zero first-layer change there:
    a column only some devices see (9 of 20 on the default synthetic run with four zero-update
    free riders, which flagged nine honest devices) is no sign of a trigger. The group is
    compared with at least five devices below it that do set the column."""
    rows = round_of(group=9, rest=0.0)
    assert groups_of(rows) == {}
    faint = rows[:, : H * F].reshape(20, H, F)
    faint[9:13, :, RARE] = 1e-3  # four of the rest set it, faintly: still too few
    assert groups_of(rows) == {}
    faint[13, :, RARE] = 1e-3  # five
    assert groups_of(rows) == {RARE: list(range(9))}
    rows[9:] = 0.0  # zero updates (free riders): no energy anywhere
    assert groups_of(rows) == {}


def test_a_group_that_carries_too_little_energy_there_is_not_flagged() -> None:
    # far above the rest, but below 10^-3 of the group's own first-layer energy
    faint = round_of(boost=1e-2)
    assert coordinated_groups(faint, SIZES) == {}


def test_nothing_is_flagged_without_a_dense_first_layer_or_with_the_rule_off() -> None:
    rows = round_of()
    assert first_layer((7, 3)) is None and first_layer((10,)) is None
    assert first_layer((4, 4)) is None  # one input column is no column structure
    assert coordinated_groups(rows, (sum(SIZES),)) == {}
    assert coordinated_groups(rows, SIZES, gap=0) == {}
    assert coordinated_groups(rows[:9], SIZES) == {}  # fewer than 2 groups' worth


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    scales=st.lists(st.floats(0.05, 20) | st.floats(-20, -0.05), min_size=20, max_size=20),
)
def test_flags_follow_the_rows_and_ignore_their_scale(seed: int, scales: list[float]) -> None:
    rows = round_of(seed=seed)
    base = groups_of(rows)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(seed))
    scaled = rows * torch.tensor(scales, dtype=torch.float64)[:, None]
    moved = groups_of(scaled[perm])
    back = {j: sorted(int(perm[i]) for i in group) for j, group in moved.items()}
    assert back == base


def test_a_column_enters_at_three_decades_and_stays_flagged_at_the_gap() -> None:
    """Hysteresis as a Schmitt trigger switches: a group gets in at 3 decades (the gap, 2.5,
    plus 0.5) and is flagged at 2.5 while its column was flagged the round before. An honest
    group at 2.5-3 decades round after round (19 honest devices on column 3 of seed 7 on
    NSL-KDD, three rounds of twenty) never gets in."""
    weak = stepped(2.75)  # past the gap (2.5), short of getting in (3.0)
    zero = torch.zeros(weak.shape[1])
    ctx = RoundContext(round=1, devices=tuple(range(20)), sizes=SIZES)
    screen = AnomalyScreen()
    for _ in range(3):  # a group at 2.75 again and again: never flagged
        screen.aggregate(zero, weak, torch.ones(20), ctx)
        assert screen.columns == [] and screen.coordinated == [RARE]
        assert not set(range(6)) & set(screen.flagged)
    strong = AnomalyScreen()
    strong.aggregate(zero, stepped(3.25), torch.ones(20), ctx)
    assert strong.columns == [RARE] and set(range(6)) <= set(strong.flagged)
    # once in, it stays at 2.75; the state carries it (the enclave reloads it every round)
    again = AnomalyScreen()
    again.load_state_dict(strong.state_dict())
    again.aggregate(zero, weak, torch.ones(20), ctx)
    assert again.columns == [RARE] and set(range(6)) <= set(again.flagged)
    # a round without the group clears it; back at 2.75 it is not flagged
    again.aggregate(zero, round_of(group=0).to(torch.float32), torch.ones(20), ctx)
    assert again.columns == []
    again.aggregate(zero, weak, torch.ones(20), ctx)
    assert again.columns == []
    off = AnomalyScreen(column_gap=0)
    for _ in range(2):
        off.aggregate(zero, stepped(3.25), torch.ones(20), ctx)
    assert off.columns == [] and off.coordinated == []
    legacy = {k: v for k, v in strong.state_dict().items() if k not in ("coordinated", "columns")}
    off.load_state_dict(legacy)  # a checkpoint from before the rule
    assert off.coordinated == [] and off.columns == []
    off.load_state_dict({})
    assert off.columns == []
    with pytest.raises(FedledgerError, match="column gap"):
        AnomalyScreen(column_gap=-1)


def test_two_columns_with_the_same_group_corroborate_each_other() -> None:
    same = {2: Group([0, 1, 2, 3, 4, 5], 2.6), 7: Group([0, 1, 2, 3, 4, 6], 2.7)}
    shared = [0, 1, 2, 3, 4]  # 5 of 7: overlap 0.71; rows 5 and 6 are in one group each
    assert corroborated(same) == {2: shared, 7: shared}
    other = {2: Group([0, 1, 2, 3, 4], 2.6), 7: Group([5, 6, 7, 8, 9], 2.7)}
    assert corroborated(other) == {}
    thin = {2: Group(list(range(6)), 2.6), 7: Group(list(range(3, 12)), 2.7)}
    assert corroborated(thin) == {}  # 3 shared of 12: 0.25
    assert corroborated(thin, overlap=0.25) == {2: [3, 4, 5], 7: [3, 4, 5]}
    three = {**same, 9: Group([5, 6, 10, 11, 12], 2.8), 4: Group([0, 1, 2, 3, 4, 5, 6], 2.9)}
    assert corroborated(three) == {2: [0, 1, 2, 3, 4, 5], 4: list(range(7)), 7: [0, 1, 2, 3, 4, 6]}
    assert corroborated({2: same[2]}) == {} and corroborated({}) == {}


def test_a_device_in_a_minority_of_a_cluster_of_paired_columns_is_not_corroborated() -> None:
    """Gaussian-noise updates stand above the rest on every rare column, each time with the
    one or two honest devices that use that column most: linked columns make one cluster and
    only rows in more than half of its groups count (any two shared groups flagged 3-8
    honest devices a round at 30% Gaussian devices on NSL-KDD)."""
    noise = list(range(6))
    groups = {
        1: Group([*noise, 10], 2.0),
        3: Group([*noise, 10], 2.0),  # honest 10 uses columns 1 and 3 most
        5: Group([*noise, 11], 2.0),
        8: Group(noise, 2.0),
        9: Group(noise, 2.0),
    }
    assert corroborated(groups) == {j: noise for j in groups}


def test_the_screen_flags_at_once_a_group_that_stands_out_on_two_columns() -> None:
    """A trigger sets several columns, so its devices form one group on each (round 1 of seed 3
    on NSL-KDD at 30%: 2.98, 2.85 and 2.41 decades; let through, that round's backdoor lasted to
    0.28 success at the end). One column at 2.75 is a one-off crossing; two with the same
    updates are flagged in their first round."""
    zero = torch.zeros(sum(SIZES))
    ctx = RoundContext(round=1, devices=tuple(range(20)), sizes=SIZES)
    one = AnomalyScreen()
    one.aggregate(zero, stepped(2.75), torch.ones(20), ctx)
    assert one.columns == []
    rows = stepped(2.75, columns=(2, RARE))
    two = AnomalyScreen()
    two.aggregate(zero, rows, torch.ones(20), ctx)
    assert two.coordinated == [2, RARE] and two.columns == [2, RARE]
    assert set(range(6)) <= set(two.flagged)
    # a seventh update that sets one of the columns as heavily joins that group only: the
    # other column does not back it, so the column rule does not flag it with them (the
    # outlier score, off here, does: among the 14 others it is the only update of its kind)
    rows[:, : H * F].reshape(20, H, F)[6, :, RARE] = 1.0
    tag = AnomalyScreen(threshold=1e9)
    tag.aggregate(zero, rows, torch.ones(20), ctx)
    found = coordinated_groups(rows, SIZES)
    assert found[RARE].rows == list(range(7)) and found[2].rows == list(range(6))
    assert tag.columns == [2, RARE] and set(range(6)) <= set(tag.flagged)
    assert 6 not in tag.flagged
    # two groups of different updates, one per column: neither backs the other
    rows = stepped(2.75, columns=(RARE,))
    w = rows[:, : H * F].reshape(20, H, F)
    w[:, :, 2] = 1.0
    w[:6, :, 2] = 10 ** (-2.75 / 2)
    w[12:, :, 2] = 10 ** (-2.75 / 2)  # rows 6-11 stand out on column 2
    apart = AnomalyScreen()
    apart.aggregate(zero, rows, torch.ones(20), ctx)
    assert apart.coordinated == [2, RARE] and apart.columns == []


def test_a_rare_column_few_devices_below_set_counts_when_asked() -> None:
    """For pairing, a group is compared with a single device below it that sets its column
    (a trigger on a column four honest devices of 80 set, seed 7 on NSL-KDD); for a single
    column it takes five."""
    rows = round_of(group=9, rest=0.0)
    faint = rows[:, : H * F].reshape(20, H, F)
    faint[9:11, :, RARE] = 1e-3  # two of the rest set it
    assert coordinated_groups(rows, SIZES) == {}
    (found,) = coordinated_groups(rows, SIZES, min_setters=1).values()
    assert found.rows == list(range(9))
    faint[9:11, :, RARE] = 0.0  # nobody below sets it: a column only the group sees
    assert coordinated_groups(rows, SIZES, min_setters=1) == {}


def test_the_same_group_on_two_columns_is_flagged_far_below_the_gap() -> None:
    """A trigger whose one-hot columns are set to 1 (what the feature pipeline can produce)
    leaves its devices 1.4 to 3.3 decades above the rest on its rare columns, one group on
    each: paired, they are flagged from ``corroboration_gap`` (1.0) decades; one such column
    alone, or two below the gap, or the pairing turned off, flags nobody."""
    zero = torch.zeros(sum(SIZES))
    ctx = RoundContext(round=1, devices=tuple(range(20)), sizes=SIZES)
    two = AnomalyScreen(threshold=1e9)
    two.aggregate(zero, stepped(1.25, columns=(2, RARE)), torch.ones(20), ctx)
    assert two.columns == [2, RARE] and two.coordinated == [2, RARE]
    assert sorted(two.flagged) == list(range(6))
    for rows, screen in (
        (stepped(1.25), AnomalyScreen(threshold=1e9)),
        (stepped(0.75, columns=(2, RARE)), AnomalyScreen(threshold=1e9)),
        (stepped(1.25, columns=(2, RARE)), AnomalyScreen(threshold=1e9, corroboration_gap=0)),
        (stepped(1.25, columns=(2, RARE)), AnomalyScreen(threshold=1e9, column_gap=0)),
    ):
        screen.aggregate(zero, rows, torch.ones(20), ctx)
        assert screen.columns == [] and screen.flagged == ()
    with pytest.raises(FedledgerError, match="corroboration gap"):
        AnomalyScreen(corroboration_gap=-0.5)
    cfg = Config.model_validate({"strategy": {"name": "screen", "screen_corroboration_gap": 2}})
    assert AnomalyScreen.from_config(cfg.strategy).corroboration_gap == 2.0


def test_on_a_paired_column_only_the_paired_rows_are_flagged_not_its_whole_group() -> None:
    """A group far enough above the rest for the single-column rule (3.25 decades) that is
    also paired with another column's group is flagged by the pairing alone: an honest device
    that uses one of the columns heavily, and so joins that column's group, stays unflagged."""
    zero = torch.zeros(sum(SIZES))
    ctx = RoundContext(round=1, devices=tuple(range(20)), sizes=SIZES)
    rows = stepped(3.25, columns=(2, RARE))
    rows[:, : H * F].reshape(20, H, F)[6, :, RARE] = 1.0  # row 6 joins column RARE's group
    assert coordinated_groups(rows, SIZES)[RARE].rows == list(range(7))
    screen = AnomalyScreen(threshold=1e9)
    screen.aggregate(zero, rows, torch.ones(20), ctx)
    assert screen.columns == [2, RARE] and sorted(screen.flagged) == list(range(6))
    alone = AnomalyScreen(threshold=1e9, corroboration_gap=0)  # single columns: whole groups
    alone.aggregate(zero, rows, torch.ones(20), ctx)
    assert sorted(alone.flagged) == list(range(7))


def test_a_weak_group_backs_a_paired_one_only_as_nearly_the_same_updates() -> None:
    """A trigger real traffic could carry has one rare column at most; its numeric columns,
    which every row sets, lift its updates by a few tenths of a decade, but all of them: a
    group there backs the rare column's group when both are nearly the same rows (0.8), and
    two weak groups never pair up."""
    rare = {7: Group(list(range(6)), 1.5)}
    same = {**rare, 2: Group(list(range(6)), 0.3)}
    assert corroborated(rare, support=same) == {2: list(range(6)), 7: list(range(6))}
    assert corroborated(rare) == {}  # no support, no pair
    near = {**rare, 2: Group([0, 1, 2, 3, 4, 6], 0.3)}  # 5 of 7 rows: 0.71
    assert corroborated(rare, support=near) == {}
    assert corroborated(rare, support=near, support_overlap=0.7) == {
        2: [0, 1, 2, 3, 4],
        7: [0, 1, 2, 3, 4],
    }
    weak_only = {2: Group(list(range(6)), 0.3), 4: Group(list(range(6)), 0.4)}
    assert corroborated({}, support=weak_only) == {}


def test_the_screen_flags_a_rare_column_backed_by_a_small_step_on_another() -> None:
    zero = torch.zeros(sum(SIZES))
    ctx = RoundContext(round=1, devices=tuple(range(20)), sizes=SIZES)

    def rows(second: float) -> torch.Tensor:
        out = stepped(1.25)  # the first 6 rows 1.25 decades up on RARE
        out[:, : H * F].reshape(20, H, F)[6:, :, 2] = 10 ** (-second / 2)
        return out

    screen = AnomalyScreen(threshold=1e9)
    screen.aggregate(zero, rows(0.3), torch.ones(20), ctx)
    assert screen.columns == [2, RARE] and sorted(screen.flagged) == list(range(6))
    for second, kwargs in ((0.1, {}), (0.3, {"support_gap": 0.0}), (0.3, {"support_gap": 0.5})):
        other = AnomalyScreen(threshold=1e9, **kwargs)
        other.aggregate(zero, rows(second), torch.ones(20), ctx)
        assert other.columns == [] and other.flagged == (), (second, kwargs)
    with pytest.raises(FedledgerError, match="support gap"):
        AnomalyScreen(support_gap=-0.1)
    cfg = Config.model_validate({"strategy": {"name": "screen", "screen_support_gap": 0.4}})
    assert AnomalyScreen.from_config(cfg.strategy).support_gap == 0.4


NSL = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "nsl_kdd"


def nsl_backdoor_config(*extra: str) -> Config:
    """The poisoning study's NSL-KDD federation (100 devices, Dirichlet 0.5, no ledger) with
    the default screen against 30% backdoor devices."""
    from fedledger.config import load_config

    sets = [
        "data.name=nsl-kdd",
        f"data.dir={NSL}",
        "data.clients=100",
        "data.partition=dirichlet",
        "data.alpha=0.5",
        "ledger.backend=none",
        "incentives.method=none",
        "strategy.name=screen",
        "attack.name=backdoor",
        "attack.fraction=0.3",
    ]
    return load_config(None, [*sets, *extra])


def assert_paired_columns_flag_every_backdoor_device(cfg: Config, rounds: int = 3) -> None:
    """In each of the first ``rounds`` rounds the screen flags every backdoor device and at
    most two honest ones, on two or more of the trigger's columns."""
    from fedledger.assemble import build_simulation

    sim = build_simulation(cfg)
    assert sim.attack is not None
    trigger = set(sim.attack.columns(sim.data.x_train.shape[1]).tolist())
    for r in range(1, rounds + 1):
        flagged = set(sim.run_round(r).metrics["screen"]["flagged"])
        assert sim.malicious <= flagged
        assert len(sim.strategy.columns) >= 2 and set(sim.strategy.columns) <= trigger
        assert len(flagged - sim.malicious) <= 2


@pytest.mark.integration
@pytest.mark.skipif(not NSL.is_dir(), reason=f"NSL-KDD not found at {NSL}")
def test_on_nsl_kdd_the_screen_finds_exactly_the_backdoor_devices() -> None:
    """With the trigger out of bounds (5.0 in every trigger column, one-hot ones too), the
    backdoor devices stand three decades and more above the rest on single columns."""
    from fedledger.assemble import build_simulation

    cfg = nsl_backdoor_config("attack.trigger_in_bounds=false")
    sim = build_simulation(cfg)
    for r in (1, 2):
        local = sim.train_devices(r)
        ctx = sim.round_context(r, local.order, local.updates)
        groups = coordinated_groups(local.updates, ctx.sizes)
        found = {local.order[i] for g in groups.values() for i in g.rows}
        assert found == sim.malicious & set(local.order)
        assert groups and set(groups) <= set(sim.attack.columns(sim.data.x_train.shape[1]))
        sim.global_params = sim.strategy.aggregate(
            sim.global_params, local.updates, local.weights, ctx
        )


@pytest.mark.integration
@pytest.mark.skipif(not NSL.is_dir(), reason=f"NSL-KDD not found at {NSL}")
def test_on_nsl_kdd_the_backdoor_devices_do_not_get_honest_devices_flagged() -> None:
    """The outlier score is measured among the updates the column rule left: with seed 1 and
    30% backdoor devices, the 30 alike updates narrowed its calibration so far that three
    honest devices with unusual traffic were flagged in most of twelve rounds (nine in most of
    twenty; the trigger out of bounds, as then)."""
    from fedledger.assemble import build_simulation

    rounds = 12
    cfg = nsl_backdoor_config(
        "train.seed=1", f"train.rounds={rounds}", "attack.trigger_in_bounds=false"
    )
    sim = build_simulation(cfg)
    flagged: dict[int, int] = {}
    for r in range(1, rounds + 1):
        for d in sim.run_round(r).metrics["screen"]["flagged"]:
            flagged[d] = flagged.get(d, 0) + 1
    assert all(flagged.get(d) == rounds for d in sim.malicious)
    honest = {d: n for d, n in flagged.items() if d not in sim.malicious}
    assert not [d for d, n in honest.items() if 2 * n > rounds]


@pytest.mark.integration
@pytest.mark.skipif(not NSL.is_dir(), reason=f"NSL-KDD not found at {NSL}")
def test_on_nsl_kdd_a_trigger_the_pipeline_can_produce_is_found_by_its_paired_columns() -> None:
    """With 1.0 written into every trigger column (its one-hot columns as real traffic sets
    them, but three services at once), seed 2's 30 backdoor devices stand out on their rare
    columns by less than the single-column gap; before the pairing rule the screen flagged
    none of them in three rounds. Each round pairs two trigger columns and flags all 30."""
    cfg = nsl_backdoor_config(
        "train.seed=2",
        "attack.trigger_value=1.0",
        "attack.trigger_in_bounds=false",
        "train.rounds=3",
    )
    assert_paired_columns_flag_every_backdoor_device(cfg)


@pytest.mark.integration
@pytest.mark.skipif(not NSL.is_dir(), reason=f"NSL-KDD not found at {NSL}")
def test_on_nsl_kdd_an_in_bounds_trigger_is_found_by_its_rare_column_and_a_numeric_one() -> None:
    """The default trigger of seed 3 carries one rare service (nnsp) and three numeric
    columns every row sets: its 20 devices stand 1.9 decades above the rest on the service
    and only 0.4 on ``dst_bytes``, but as the same 20. Without the support rule the screen
    flagged none of them in round 1 and 2 of 20 in round 2."""
    cfg = nsl_backdoor_config("train.seed=3", "attack.fraction=0.2", "train.rounds=3")
    assert_paired_columns_flag_every_backdoor_device(cfg)
