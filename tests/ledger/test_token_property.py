"""Token conservation: treasury + balances + stakes == total supply after any sequence of
stake grants, penalties and (valid or forged) payouts."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedledger.errors import LedgerError
from fedledger.ledger import EmbeddedChain, LedgerClient, Member, derive_account, rewards_digest
from tests.ledger.conftest import GENESIS_MODEL, h

SUPPLY = 10_000
AUTHORITY = derive_account(11, "authority", 0)
VALIDATOR = derive_account(11, "validator", 0)
DEVICES = [Member(h(f"device{i}"), "device", h(f"k{i}"), 0) for i in range(4)]
IDS = [d.id for d in DEVICES]

amount = st.integers(min_value=0, max_value=4_000)
device = st.integers(min_value=0, max_value=len(DEVICES) - 1)
operation = st.one_of(
    st.tuples(st.just("stake"), device, amount),
    st.tuples(st.just("penalise"), device, amount),
    st.tuples(st.just("payout"), st.lists(st.tuples(device, amount), max_size=3), st.booleans()),
)


def _fresh() -> LedgerClient:
    chain = EmbeddedChain([AUTHORITY.address, VALIDATOR.address])
    client = LedgerClient.deploy(chain, AUTHORITY, genesis_model=GENESIS_MODEL, token_supply=SUPPLY)
    client.register([*DEVICES, Member(h("v"), "validator", h("vk"), 0, account=VALIDATOR.address)])
    return client


def _conserved(client: LedgerClient) -> bool:
    balances = sum(client.balance_of(i) for i in IDS)
    stakes = sum(client.stake_of(i) for i in IDS)
    events = sum(client.balances().values()) + sum(client.stakes().values())
    return client.treasury() + balances + stakes == SUPPLY == client.treasury() + events


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=6))
def test_supply_is_conserved(ops: list[tuple[object, ...]]) -> None:
    client = _fresh()
    r = 0
    for op in ops:
        try:
            if op[0] == "stake":
                client.grant_stake(IDS[int(op[1])], int(op[2]))
            elif op[0] == "penalise":
                client.penalise(r, IDS[int(op[1])], int(op[2]))
            else:
                entries, forged = op[1], op[2]
                ids = [IDS[i] for i, _ in entries]  # type: ignore[attr-defined]
                amounts = [a for _, a in entries]  # type: ignore[attr-defined]
                r += 1
                client.open_round(r, client.latest_model(), h("config"))
                digest = rewards_digest(ids, amounts)
                client.vote(r, VALIDATOR, h(f"m{r}"), h("a"), digest, h("x"), h("q"))
                client.payout(r, ids, [a + 1 for a in amounts] if forged and ids else amounts)
        except LedgerError as exc:  # refused moves must leave the books intact too
            assert any(s in str(exc) for s in ("treasury too small", "digest mismatch")), exc
        assert _conserved(client)
