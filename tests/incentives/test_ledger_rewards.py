"""Rewards on the ledger: paid, penalised and booked only when the quorum finalised the
proposed rewards digest, never for a round that fell back to its base model."""

from __future__ import annotations

from typing import Any

import torch

from fedledger.assemble import build_simulation
from fedledger.config import load_config
from fedledger.fl.contribution_game import RoundIncentives
from fedledger.fl.gate import FALLBACK
from fedledger.fl.ledger_rewards import RoundRewards, settle_rewards
from fedledger.fl.network import make_participants
from fedledger.fl.validator import NO_REWARDS
from fedledger.incentives import Settlement
from fedledger.ledger.records import rewards_digest


class FakeNet:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def settle(self, r: int, rewards: list[list[int]], penalties: list[list[int]]) -> list[Any]:
        self.calls.append(("settle", (r, rewards, penalties)))
        return [{"tx": "pay", "gas": 1}]

    def set_status(self, device: int, active: bool, r: int) -> list[Any]:
        self.calls.append(("set_status", (device, active, r)))
        return [{"tx": "revoke", "gas": 1}]


def setup(paid: dict[int, int] | None = None) -> tuple[Any, RoundRewards]:
    sim = build_simulation(load_config(None, ["ledger.backend=none", "data.clients=3"]))
    people = make_participants(0, list(sim.data.device_names), list(sim.data.clusters), 1, 3)
    paid = {0: 60, 1: 40} if paid is None else paid
    settlement = Settlement(paid, {2: 10}, {2: "zero"}, {0: 1.0, 1: 1.0, 2: 0.25}, [2])
    contribution = {"method": "gtg", "scores": {"0": 0.3, "1": 0.2, "2": 0.0}, "evaluations": 9}
    rewards = RoundRewards(RoundIncentives(contribution, settlement, None, [0, 1]), people)
    assert rewards.digest == rewards_digest(rewards.ids, list(paid.values()))
    return sim, rewards


def outcome(rewards: bytes, status: str = "finalised") -> dict[str, Any]:
    return {"status": status, "model": "aa", "accepted": "bb", "rewards": rewards.hex()}


def ballots(rewards: bytes) -> list[dict[str, Any]]:
    return [
        {"validator": v, "model": "aa", "accepted": "bb", "rewards": rewards.hex()}
        for v in range(3)
    ]


def gate(decision: str = "candidate") -> dict[str, Any]:
    return {"validators": [{"decision": decision} for _ in range(3)]}


def test_a_finalised_round_pays_penalises_revokes_and_books() -> None:
    sim, rewards = setup()
    net = FakeNet()
    got = settle_rewards(
        net, sim, 4, rewards, outcome(rewards.digest), ballots(rewards.digest), gate(), [0, 1, 2]
    )
    assert [x["tx"] for x in got] == ["pay", "revoke"]
    assert net.calls == [
        ("settle", (4, [[0, 60], [1, 40]], [[2, 10]])),
        ("set_status", (2, False, 4)),
    ]
    assert rewards.settled and rewards.record()["paid"] == {"0": 60, "1": 40}
    assert rewards.record()["scores"] == {"0": 0.3, "1": 0.2, "2": 0.0}
    assert rewards.record()["free_riders"] == {"2": "zero"}
    assert sim.book.balances.tolist() == [60, 40, 0] and sim.book.stakes.tolist()[2] == 90
    assert sim.book.excluded_devices() == {2}


def test_no_payout_for_a_fallback_another_digest_or_an_unfinalised_round() -> None:
    for out, votes, decision in [
        (outcome(NO_REWARDS), ballots(NO_REWARDS), FALLBACK),  # the gate fell back
        (outcome(bytes(32)), ballots(bytes(32)), "candidate"),  # the quorum voted other rewards
        (outcome(b"\x01" * 32, "failed"), [], "candidate"),  # no quorum
    ]:
        sim, rewards = setup()
        net = FakeNet()
        assert settle_rewards(net, sim, 4, rewards, out, votes, gate(decision), [0, 1, 2]) == []
        assert net.calls == [] and not rewards.settled
        assert rewards.metrics()["rewards"]["paid"] == {} and rewards.record()["paid"] == {}
        assert int(torch.tensor(sim.book.balances).sum()) == 0


def test_a_fallback_takes_no_penalty_even_when_nothing_was_to_be_paid() -> None:
    """With no positive score the proposed digest is the empty vector's, which a falling-back
    validator votes for too: the gate's decision, not the digest, keeps the round unsettled."""
    sim, rewards = setup(paid={})
    assert rewards.digest == NO_REWARDS
    net = FakeNet()
    out, votes = outcome(NO_REWARDS), ballots(NO_REWARDS)
    assert settle_rewards(net, sim, 4, rewards, out, votes, gate(FALLBACK), [0, 1, 2]) == []
    assert net.calls == [] and sim.book.stakes.tolist() == [100, 100, 100]
    assert settle_rewards(net, sim, 4, rewards, out, votes, gate(), [0, 1, 2]) != []
    assert net.calls[0] == ("settle", (4, [], [[2, 10]])) and sim.book.stakes.tolist()[2] == 90
