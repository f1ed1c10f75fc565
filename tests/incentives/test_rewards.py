"""Rewards: the pool split, and the book's penalties, reputation, participation and exclusion."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.incentives.rewards import MAX_PAID, RewardBook, RewardSettings, split_pool


def test_the_pool_is_split_by_positive_scores_with_largest_remainders() -> None:
    assert split_pool({0: 1.0, 1: 1.0, 2: 2.0}, 1000) == {0: 250, 1: 250, 2: 500}
    # 100 / 3: quotas 33.33 each, the spare token to the lowest id
    assert split_pool({5: 1.0, 3: 1.0, 9: 1.0}, 100) == {3: 34, 5: 33, 9: 33}
    assert split_pool({0: -1.0, 1: 0.0, 2: 3.0}, 10) == {2: 10}
    assert split_pool({0: -1.0, 1: float("nan")}, 10) == {}
    assert split_pool({0: 1.0}, 0) == {}


@settings(max_examples=200, deadline=None)
@given(
    scores=st.dictionaries(
        st.integers(0, 50), st.floats(-1, 1, allow_nan=False), min_size=1, max_size=30
    ),
    pool=st.integers(0, 10_000),
)
def test_the_split_pays_the_pool_exactly_and_within_a_token_of_each_quota(
    scores: dict[int, float], pool: int
) -> None:
    shares = split_pool(scores, pool)
    positive = {d: s for d, s in scores.items() if s > 0}
    if not positive or pool == 0:
        assert shares == {}
        return
    assert sum(shares.values()) == pool
    total = sum(positive.values())
    for d, s in positive.items():
        assert abs(shares.get(d, 0) - pool * s / total) < 1.0
    assert set(shares) <= set(positive)


def settings_(**kw: float) -> RewardSettings:
    base = {
        "pool": 100,
        "stake": 25,
        "penalty": 10,
        "participation_threshold": 0.5,
        "reputation_floor": 0.3,
    }
    base.update(kw)
    return RewardSettings(**base)  # type: ignore[arg-type]


def test_a_free_rider_pays_a_penalty_loses_reputation_and_is_excluded_the_second_time() -> None:
    book = RewardBook(3, settings_())
    devices, scores = [0, 1, 2], {0: 1.0, 1: 3.0, 2: 5.0}
    first = book.propose(devices, devices, scores, {2: "zero"})
    assert first.rewards == {0: 25, 1: 75}  # the free rider's score does not count
    assert first.penalties == {2: 10} and first.free_riders == {2: "zero"}
    assert first.reputation == {0: 1.0, 1: 1.0, 2: 0.5} and first.excluded == []
    book.apply(devices, devices, first)
    second = book.propose(devices, devices, scores, {2: "stale"})
    assert second.excluded == [2] and second.reputation[2] == 0.25
    book.apply(devices, devices, second)
    assert book.excluded_devices() == {2}
    assert list(book.stakes) == [25, 25, 5]
    third = book.propose(devices, devices, scores, {2: "noise"})
    assert third.penalties == {2: 5}  # never more than the stake left
    assert list(book.balances) == [50, 150, 0]


def test_propose_changes_nothing_until_applied() -> None:
    book = RewardBook(2, settings_())
    before = {k: v.clone() for k, v in book.state_dict().items()}
    book.propose([0, 1], [0, 1], {0: 1.0, 1: 1.0}, {1: "zero"})
    after = book.state_dict()
    assert all(bool((before[k] == after[k]).all()) for k in before)


def test_devices_below_the_participation_threshold_are_not_paid() -> None:
    book = RewardBook(2, settings_(participation_threshold=0.6))
    for _ in range(2):  # device 1 is selected but screened out twice
        s = book.propose([0, 1], [0], {0: 1.0, 1: 1.0}, {})
        book.apply([0, 1], [0], s)
    s = book.propose([0, 1], [0, 1], {0: 1.0, 1: 1.0}, {})
    assert s.unpaid == [1] and s.rewards == {0: 100}  # 1 useful round of 3 < 0.6
    assert s.free_riders == {} and s.penalties == {}  # not paid, but not punished either


def test_an_honest_device_with_little_data_is_paid_for_what_it_adds() -> None:
    book = RewardBook(2, settings_())
    s = book.propose([0, 1], [0, 1], {0: 0.9, 1: 0.1}, {})
    assert s.rewards == {0: 90, 1: 10} and s.penalties == {} and s.reputation == {0: 1.0, 1: 1.0}


def test_at_most_max_paid_devices_share_a_round() -> None:
    n = MAX_PAID + 4
    book = RewardBook(n, settings_(pool=1000 * n))
    scores = {d: float(d + 1) for d in range(n)}
    s = book.propose(list(range(n)), list(range(n)), scores, {})
    assert len(s.rewards) == MAX_PAID and min(s.rewards) == 4


def test_the_book_round_trips_through_its_state() -> None:
    book = RewardBook(3, settings_())
    s = book.propose([0, 1, 2], [0, 1, 2], {0: 1.0, 1: 2.0, 2: 3.0}, {1: "zero"})
    book.apply([0, 1, 2], [0, 1, 2], s)
    copy = RewardBook(3, settings_())
    copy.load_state_dict(book.state_dict())
    assert copy.reputation.tolist() == book.reputation.tolist() == [1.0, 0.5, 1.0]
    assert copy.balances.tolist() == book.balances.tolist()
    assert copy.stakes.tolist() == [25, 15, 25]
    with pytest.raises(KeyError):
        copy.load_state_dict({})
