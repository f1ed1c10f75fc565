"""Replay: a malicious device resends an update it sent rounds ago instead of a fresh one."""

from __future__ import annotations

import torch

from fedledger.attacks.base import Attack, AttackContext
from fedledger.config import AttackConfig

__all__ = ["Replay"]


class Replay(Attack):
    """A malicious device resends its own update of ``L = attack.replay_lag`` rounds ago.

    In round ``r`` the device sends ``Δ_{r−L}``, the update it sent in round ``r − L``
    (the latest round ``≤ r − L`` in which it sent one, if it was not sampled then). Until it
    has sent one that old, it sends its current honest update. What it sends is remembered, so
    with ``L = 1`` it sends its first update again and again, and with ``L = 2`` it alternates
    between its first two.

    This is the content-level form of a replay attack on a ledger: the stale update goes out
    in a fresh envelope, correctly signed and bound to the current round with a new nonce, so
    the gateway's round and nonce checks (which refuse a replayed *envelope*) let it through;
    only the update's content is old. It also lets a device free-ride on its earlier work.

    The history (by device id, from :attr:`AttackContext.devices`) lives in the attack object:
    a resumed run starts it afresh, so each device sends honest updates for ``L`` rounds again.
    """

    name = "replay"

    def __init__(self, cfg: AttackConfig) -> None:
        super().__init__(cfg)
        self.history: dict[int, dict[int, torch.Tensor]] = {}
        """device id → round → the update the device sent in that round."""

    def poison_updates(self, updates: torch.Tensor, rows: list[int], ctx: AttackContext) -> None:
        lag = self.cfg.replay_lag
        for k in rows:
            sent = self.history.setdefault(ctx.devices[k], {})
            old = [r for r in sent if r <= ctx.round - lag]
            if old:
                replayed = max(old)
                updates[k] = sent[replayed]
                for r in old:  # later rounds replay this one or a newer one
                    if r < replayed:
                        del sent[r]
            sent[ctx.round] = updates[k].detach().clone()
