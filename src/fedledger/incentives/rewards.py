"""Rewards and penalties: each round's token pool split by contribution, free riders penalised.

The scheme is the reward layer of the four-layer architecture (local nodes, edge,
blockchain fog, cloud) that fedledger's design starts from (DESIGN.md, "Roles"):
contributors are paid in proportion to what they contributed, devices must take part in a
minimum share of the rounds they are asked to, and misbehaviour costs stake and reputation
until the device is excluded. Per round, with ``D`` the devices selected:

1. **Free riders** (:func:`~fedledger.incentives.free_riders.detect_free_riders`) lose
   ``penalty`` tokens of stake each time they are caught.
2. **Reputation** ``ρ_d ← λ·ρ_d + (1 − λ)·[d trained honestly]`` for every ``d ∈ D``
   (``ρ = 1`` at the start, ``λ = REPUTATION_DECAY``); a device whose reputation falls below
   ``reputation_floor`` is excluded: revoked on the ledger, left out of every later round.
3. **Participation** ``π_d`` = rounds in which ``d``'s update was aggregated and not
   free-ridden / rounds it was selected; only devices with ``π_d ≥ participation_threshold``
   are paid.
4. **Pool**: the paid devices whose update was aggregated share ``pool`` tokens in
   proportion to their positive contribution scores (:func:`split_pool`; at most
   :data:`MAX_PAID` of them, the highest); a round in which none has a positive score pays
   nothing.

Honest devices with little data are not punished: they are never free riders, keep full
reputation and participation, and earn what their (smaller) contribution is worth.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = [
    "MAX_PAID",
    "REPUTATION_DECAY",
    "RewardBook",
    "RewardSettings",
    "Settlement",
    "split_pool",
]

MAX_PAID = 256
"""Most devices one round pays (``Token.payout`` takes at most 256 entries): the highest
scores."""

REPUTATION_DECAY = 0.5
"""Weight ``λ`` of a device's past in its reputation: two rounds caught in a row take it from
1 to 0.25."""


@dataclass(frozen=True)
class RewardSettings:
    """``[incentives]`` token settings (see :class:`~fedledger.config.IncentivesConfig`)."""

    pool: int = 1000
    stake: int = 100
    penalty: int = 10
    participation_threshold: float = 0.5
    reputation_floor: float = 0.3


def split_pool(scores: Mapping[int, float], pool: int) -> dict[int, int]:
    """Split ``pool`` whole tokens among the devices with a positive score, in proportion to
    it (Hamilton's largest-remainder method: every share is the floor of its quota plus at
    most one token, ties to the lower device id). The shares add up to ``pool`` exactly; with
    no positive score nothing is paid (``{}``). Devices with share 0 are left out."""
    positive = {d: float(s) for d, s in scores.items() if math.isfinite(s) and s > 0}
    total = math.fsum(positive.values())
    if pool <= 0 or not positive or total <= 0:
        return {}
    quotas = {d: pool * s / total for d, s in positive.items()}
    shares = {d: math.floor(q) for d, q in quotas.items()}
    left = pool - sum(shares.values())
    by_remainder = sorted(quotas, key=lambda d: (-(quotas[d] - shares[d]), d))
    for d in by_remainder[:left]:
        shares[d] += 1
    return {d: a for d, a in sorted(shares.items()) if a > 0}


@dataclass
class Settlement:
    """What one round pays and takes, before it is applied to the book.

    Attributes
    ----------
    rewards
        Tokens paid to each device (only non-zero shares).
    penalties
        Stake taken from each caught free rider (at most what it has left).
    free_riders
        The caught devices and the kind of update each sent.
    reputation
        Every selected device's reputation after the round.
    excluded
        Devices whose reputation fell below the floor this round.
    unpaid
        Devices with an aggregated, honest update that are not paid because their
        participation is below the threshold.
    """

    rewards: dict[int, int]
    penalties: dict[int, int]
    free_riders: dict[int, str]
    reputation: dict[int, float]
    excluded: list[int]
    unpaid: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "paid": {str(d): a for d, a in self.rewards.items()},
            "total": sum(self.rewards.values()),
            "penalties": {str(d): a for d, a in self.penalties.items()},
            "free_riders": {str(d): k for d, k in self.free_riders.items()},
            "excluded": self.excluded,
            "unpaid": self.unpaid,
        }


class RewardBook:
    """Every device's reputation, participation, balance and stake over a run.

    :meth:`propose` works out a round's :class:`Settlement` without changing anything (the
    validators vote on its rewards); :meth:`apply` books it once the round is final.
    """

    def __init__(self, n_devices: int, settings: RewardSettings) -> None:
        self.settings = settings
        self.reputation = np.ones(n_devices, dtype=np.float64)
        self.selected = np.zeros(n_devices, dtype=np.int64)
        self.useful = np.zeros(n_devices, dtype=np.int64)
        self.excluded = np.zeros(n_devices, dtype=bool)
        self.balances = np.zeros(n_devices, dtype=np.int64)
        self.stakes = np.full(n_devices, settings.stake, dtype=np.int64)

    def propose(
        self,
        devices: list[int],
        aggregated: list[int],
        scores: Mapping[int, float],
        free_riders: Mapping[int, str],
    ) -> Settlement:
        """The round's settlement.

        Parameters
        ----------
        devices
            The devices selected this round.
        aggregated
            Those whose update went into the aggregate (accepted, not screened out).
        scores
            Contribution score of each device that sent an update.
        free_riders
            Caught free riders and the kind of update each sent.
        """
        s = self.settings
        chosen = sorted(set(devices))
        riders = {d: free_riders[d] for d in sorted(free_riders) if d in set(chosen)}
        useful = sorted(set(aggregated) - set(riders))
        reputation: dict[int, float] = {}
        excluded = []
        for d in chosen:
            honest = 0.0 if d in riders else 1.0
            rho = REPUTATION_DECAY * float(self.reputation[d]) + (1 - REPUTATION_DECAY) * honest
            reputation[d] = rho
            if rho < s.reputation_floor and not self.excluded[d]:
                excluded.append(d)
        eligible: list[int] = []
        unpaid: list[int] = []
        for d in useful:
            share = (int(self.useful[d]) + 1) / (int(self.selected[d]) + 1)
            (eligible if share >= s.participation_threshold else unpaid).append(d)
        paid = {d: float(scores.get(d, 0.0)) for d in eligible}
        if len(paid) > MAX_PAID:  # one payout transaction credits at most MAX_PAID devices
            top = sorted(paid, key=lambda d: (-paid[d], d))[:MAX_PAID]
            paid = {d: paid[d] for d in sorted(top)}
        rewards = split_pool(paid, s.pool)
        penalties = {d: a for d in riders if (a := min(s.penalty, int(self.stakes[d]))) > 0}
        return Settlement(rewards, penalties, riders, reputation, excluded, unpaid)

    def apply(self, devices: list[int], aggregated: list[int], settlement: Settlement) -> None:
        """Book a final round's settlement (see :meth:`propose` for the arguments)."""
        for d in set(devices):
            self.selected[d] += 1
        for d in set(aggregated) - set(settlement.free_riders):
            self.useful[d] += 1
        for d, rho in settlement.reputation.items():
            self.reputation[d] = rho
        for d in settlement.excluded:
            self.excluded[d] = True
        for d, a in settlement.rewards.items():
            self.balances[d] += a
        for d, a in settlement.penalties.items():
            self.stakes[d] -= a

    def excluded_devices(self) -> frozenset[int]:
        return frozenset(int(d) for d in np.flatnonzero(self.excluded))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The book as tensors (saved in the run's checkpoint)."""
        return {
            "reputation": torch.from_numpy(self.reputation.copy()),
            "selected": torch.from_numpy(self.selected.copy()),
            "useful": torch.from_numpy(self.useful.copy()),
            "excluded": torch.from_numpy(self.excluded.astype(np.int64)),
            "balances": torch.from_numpy(self.balances.copy()),
            "stakes": torch.from_numpy(self.stakes.copy()),
        }

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.reputation = state["reputation"].numpy().astype(np.float64).copy()
        self.selected = state["selected"].numpy().astype(np.int64).copy()
        self.useful = state["useful"].numpy().astype(np.int64).copy()
        self.excluded = state["excluded"].numpy().astype(bool).copy()
        self.balances = state["balances"].numpy().astype(np.int64).copy()
        self.stakes = state["stakes"].numpy().astype(np.int64).copy()
