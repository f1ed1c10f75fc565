"""Checks of the token: conservation, and payouts only for finalised rounds."""

from __future__ import annotations

from fedledger.audit.checks.common import ChainView
from fedledger.audit.report import Check

__all__ = ["check_token"]


def check_token(chain: ChainView) -> Check:
    c = Check(
        "token",
        "treasury + balances + stakes equal the total supply; payouts only for finalised rounds",
    )
    held = chain.treasury + sum(chain.balances.values()) + sum(chain.stakes.values())
    c.checked = 1 + len(chain.paid)
    if held != chain.total_supply:
        c.fail(f"tokens held ({held}) differ from the total supply ({chain.total_supply})")
    for r in sorted(chain.paid):
        info = chain.rounds.get(r)
        if info is None or info["status"] != "finalised":
            c.fail(f"round {r}: rewards were paid but the round was not finalised")
    return c
