"""Rewards on the ledger: the validators' rewards vector, its payout and the penalties.

While they derive the candidate, the validators score the accepted updates
(:func:`~fedledger.fl.contribution_game.round_incentives`: contributions on the valuation
rows, free-rider detection, the reward book's settlement) and put the digest of the rewards
vector in their votes; every honest validator computes the same vector from the same accepted
updates and seeded streams (the simulation computes it once for all of them). Under
``secure_aggregation = "enclave"`` the validators see no update: the enclave scores them and
signs the scores in its transcript, which every validator verifies under its own quote, and
the rewards vector is settled from those
(:func:`~fedledger.fl.contribution_game.enclave_incentives`). A validator
whose gate falls back votes for no rewards. Once the quorum finalises the round with that
digest, the authority pays the vector in one ``Token.payout`` transaction (the contract
checks it against the finalised digest), takes each caught free rider's penalty from its
stake, and revokes the devices whose reputation fell below the floor, so that the gateways
refuse them from the next round on. The reward book is updated only then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from fedledger.fl.contribution_game import RoundIncentives, enclave_incentives, round_incentives
from fedledger.fl.gate import FALLBACK
from fedledger.ledger.records import rewards_digest

if TYPE_CHECKING:
    from fedledger.fl.engine import Simulation
    from fedledger.fl.ledger_protocol import NetworkLike
    from fedledger.fl.network import Participants
    from fedledger.fl.secure.base import SecureOutcome

__all__ = ["RoundRewards", "propose_rewards", "settle_rewards"]


class RoundRewards:
    """A round's proposed rewards: the incentives outcome and the digest validators vote for."""

    def __init__(self, incentives: RoundIncentives, people: Participants) -> None:
        self.incentives = incentives
        paid = incentives.settlement.rewards
        self.ids = [people.devices[d].id for d in paid]
        self.digest = rewards_digest(self.ids, list(paid.values()))
        self.settled = False

    def record(self) -> dict[str, Any]:
        """The round's ``rewards`` entry of ``ledger/rounds.jsonl``: the contribution scores
        and free riders it follows from, the digest voted for, whether it was paid, and what
        was paid and taken (by device index)."""
        s = self.incentives.settlement
        return {
            "method": self.incentives.contribution["method"],
            "scores": self.incentives.contribution["scores"],
            "free_riders": {str(d): k for d, k in sorted(s.free_riders.items())},
            "digest": self.digest.hex(),
            "settled": self.settled,
            "paid": {str(d): a for d, a in s.rewards.items()} if self.settled else {},
            "penalties": {str(d): a for d, a in s.penalties.items()} if self.settled else {},
            "excluded": s.excluded if self.settled else [],
        }

    def metrics(self) -> dict[str, Any]:
        """The round's ``contribution`` and ``rewards`` metrics entries (nothing paid, taken
        or excluded unless the round settled)."""
        out = self.incentives.metrics()
        if not self.settled:
            out["rewards"].update(paid={}, total=0, penalties={}, excluded=[], unpaid=[])
        out["rewards"]["settled"] = self.settled
        return out


def propose_rewards(
    sim: Simulation,
    people: Participants,
    r: int,
    base: torch.Tensor,
    candidate: torch.Tensor,
    row_ids: list[int],
    updates: torch.Tensor,
    weights: torch.Tensor,
    devices: list[int],
    flagged: list[int] | None,
    protected: SecureOutcome | None = None,
) -> RoundRewards | None:
    """The round's rewards, or ``None`` without incentives. ``flagged`` are the devices the
    validators' strategy screened out of the candidate; ``protected`` the enclave's outcome,
    whose scores settle the round when it scored the updates."""
    if sim.book is None:
        return None
    if protected is not None:
        return RoundRewards(enclave_incentives(sim, r, protected, devices), people)
    screened = set(flagged or [])
    incentives = round_incentives(
        sim,
        r,
        base,
        candidate,
        row_ids,
        updates,
        weights,
        devices,
        [d for d in row_ids if d >= 0 and d not in screened],
        sim.last_step(),
    )
    return RoundRewards(incentives, people)


def settle_rewards(
    net: NetworkLike,
    sim: Simulation,
    r: int,
    rewards: RoundRewards | None,
    outcome: dict[str, Any],
    ballots: list[dict[str, Any]],
    gate: dict[str, Any],
    devices: list[int],
) -> list[dict[str, Any]]:
    """Pay, penalise and revoke after the vote, if the round finalised with the proposed
    rewards and not as a gate fallback; return the receipts."""
    if rewards is None or outcome["status"] != "finalised":
        return []
    carried = [
        b
        for b in ballots
        if (b["model"], b["accepted"], b["rewards"])
        == (outcome["model"], outcome["accepted"], outcome["rewards"])
    ]
    if outcome["rewards"] != rewards.digest.hex() or not carried:
        return []
    if any(gate["validators"][b["validator"]]["decision"] == FALLBACK for b in carried):
        return []
    assert sim.book is not None
    s = rewards.incentives.settlement
    receipts = net.settle(
        r, [[d, a] for d, a in s.rewards.items()], [[d, a] for d, a in s.penalties.items()]
    )
    for d in s.excluded:
        receipts += net.set_status(d, False, r)
    sim.book.apply(devices, rewards.incentives.aggregated, s)
    rewards.settled = True
    return receipts
