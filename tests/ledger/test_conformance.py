"""The contracts behave the same on every backend: registry, rounds, votes, tokens, gas."""

from __future__ import annotations

import pytest

from fedledger.errors import LedgerError
from fedledger.ledger import LedgerClient, Member, TransactionReverted, rewards_digest
from tests.ledger.conftest import GENESIS_MODEL, SUPPLY, ChainFactory, Ledger, deploy_ledger, h


def _outsider_client(ledger: Ledger) -> LedgerClient:
    """The same contracts driven by an account that is not the authority."""
    return LedgerClient(ledger.client.backend, ledger.roles.outsider, ledger.client.addresses)


def _open(ledger: Ledger, r: int, base: bytes | None = None) -> None:
    ledger.client.open_round(r, base or ledger.client.latest_model(), h("config"))


def test_deploy_starts_from_the_genesis_model(ledger: Ledger) -> None:
    c = ledger.client
    assert set(c.addresses) == {"Registry", "Rounds", "Token"}
    assert c.latest_model() == GENESIS_MODEL
    assert c.last_round() == 0
    assert c.round_status(1) == "none"
    assert c.validator_count() == 3
    assert c.quorum_needed() == 2
    assert c.treasury() == SUPPLY == c.total_supply()
    attached = LedgerClient.attach(c.backend, ledger.roles.authority, c.addresses)
    assert attached.latest_model() == GENESIS_MODEL


def test_attach_refuses_another_authority(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="belongs to"):
        LedgerClient.attach(ledger.client.backend, ledger.roles.outsider, ledger.client.addresses)


def test_register_batches_over_64_and_lists_members(ledger: Ledger) -> None:
    devices = [
        Member(h(f"{ledger.roles.seed}/d{i}"), "device", h(f"k{i}"), i % 3) for i in range(70)
    ]
    receipts = ledger.client.register(devices, round=0)
    assert len(receipts) == 2
    assert sum(len(r.events) for r in receipts) == 70
    members = ledger.client.members()
    assert members == ledger.roles.members + devices
    assert ledger.client.member(devices[69].id) == devices[69]
    assert ledger.client.member(ledger.roles.members[0].id) == ledger.roles.members[0]
    assert ledger.client.member(h("nobody")) is None


def test_register_rejects_a_known_id_and_a_reused_account(ledger: Ledger) -> None:
    again = ledger.roles.members[0]
    with pytest.raises(TransactionReverted, match=r"^register_many: already registered$"):
        ledger.client.register([again])
    reuse = Member(h("new gateway"), "gateway", h("k"), 9, account=again.account)
    with pytest.raises(LedgerError, match="account already used"):
        ledger.client.register([reuse])
    assert len(ledger.client.members()) == len(ledger.roles.members)


def test_only_the_authority_writes(ledger: Ledger) -> None:
    other = _outsider_client(ledger)
    member = Member(h("x"), "device", h("k"), 0)
    for action in (
        lambda: other.register([member]),
        lambda: other.set_status(ledger.roles.members[0].id, "revoked", 0),
        lambda: other.register_measurement(h("m")),
        lambda: other.open_round(1, GENESIS_MODEL, h("c")),
        lambda: other.grant_stake(ledger.roles.members[0].id, 5),
        lambda: other.penalise(1, ledger.roles.members[0].id, 5),
        lambda: other.payout(1, [], []),
    ):
        with pytest.raises(TransactionReverted, match="only authority"):
            action()


def test_measurements_register_and_revoke(ledger: Ledger) -> None:
    c = ledger.client
    assert not c.measurement_ok(h("enclave"))
    assert c.register_measurement(h("enclave")).event("MeasurementRegistered") is not None
    assert c.measurement_ok(h("enclave"))
    with pytest.raises(LedgerError, match="already registered"):
        c.register_measurement(h("enclave"))
    c.revoke_measurement(h("enclave"))
    assert not c.measurement_ok(h("enclave"))


def test_revoked_validator_cannot_vote_and_leaves_the_count(ledger: Ledger) -> None:
    c = ledger.client
    validator = ledger.roles.members[2]  # first validator
    receipt = c.set_status(validator.id, "revoked", round=0)
    assert receipt.event("StatusChanged") is not None
    assert c.validator_count() == 2
    assert c.member(validator.id) == Member(**{**validator.__dict__, "status": "revoked"})
    assert [m.status for m in c.members()] == ["active", "active", "revoked", "active", "active"]
    _open(ledger, 1)
    with pytest.raises(TransactionReverted, match=r"^vote: not a validator$"):
        ledger.vote(1, 0, h("m1"))
    c.set_status(validator.id, "active", round=1)
    assert c.validator_count() == 3
    ledger.vote(1, 0, h("m1"))


@pytest.mark.parametrize(("validators", "quorum"), [(3, 2), (4, 3)])
def test_round_finalises_at_two_thirds(
    make_chain: ChainFactory, validators: int, quorum: int
) -> None:
    ledger = deploy_ledger(make_chain, validators=validators)
    c = ledger.client
    assert c.quorum_needed() == quorum
    opened = c.open_round(1, GENESIS_MODEL, h("config"))
    assert opened.event("RoundOpened") is not None
    for g in ledger.roles.gateways:
        c.commit(1, g, h(f"root/{g.address}"), 7)
    for v in range(quorum - 1):
        receipt = ledger.vote(1, v, h("m1"))
        assert receipt.event("Finalised") is None
    assert c.round_status(1) == "open"
    final = ledger.vote(1, quorum - 1, h("m1"))
    event = final.event("Finalised")
    assert event is not None and event.args["votes"] == quorum
    info = c.round_info(1)
    assert (info.status, info.base, info.config, info.model) == (
        "finalised",
        GENESIS_MODEL,
        h("config"),
        h("m1"),
    )
    assert (info.accepted, info.rewards, info.votes, info.support, info.commits) == (
        h("accepted"),
        h("rewards"),
        quorum,
        quorum,
        2,
    )
    assert c.latest_model() == h("m1")
    commits = c.commits(1)
    assert [(x.gateway, x.count) for x in commits] == [
        (m.id, 7) for m in ledger.roles.members if m.role == "gateway"
    ]


def test_explicit_quorum(make_chain: ChainFactory) -> None:
    ledger = deploy_ledger(make_chain, validators=3, quorum=1)
    assert ledger.client.quorum_needed() == 1
    _open(ledger, 1)
    assert ledger.vote(1, 2, h("m1")).event("Finalised") is not None


def test_one_commit_per_gateway_and_one_vote_per_validator(ledger: Ledger) -> None:
    c = ledger.client
    _open(ledger, 1)
    c.commit(1, ledger.roles.gateways[0], h("root"), 3)
    with pytest.raises(TransactionReverted, match=r"^commit: already committed$"):
        c.commit(1, ledger.roles.gateways[0], h("root2"), 3)
    ledger.vote(1, 0, h("m1"))
    with pytest.raises(TransactionReverted, match=r"^vote: already voted$"):
        ledger.vote(1, 0, h("m1"))
    assert c.round_info(1).votes == 1


def test_unregistered_accounts_are_rejected(ledger: Ledger) -> None:
    c = ledger.client
    _open(ledger, 1)
    outsider = ledger.roles.outsider
    with pytest.raises(TransactionReverted, match="not a validator"):
        c.vote(1, outsider, h("m"), h("a"), h("r"), h("x"), h("q"))
    with pytest.raises(TransactionReverted, match="not a gateway"):
        c.commit(1, outsider, h("root"), 1)
    with pytest.raises(TransactionReverted, match="not a gateway"):
        c.commit(1, ledger.roles.validators[0], h("root"), 1)
    with pytest.raises(TransactionReverted, match="not a validator"):
        c.vote(1, ledger.roles.gateways[0], h("m"), h("a"), h("r"), h("x"), h("q"))


def test_byzantine_vote_is_outvoted_and_recorded(make_chain: ChainFactory) -> None:
    ledger = deploy_ledger(make_chain, validators=4)
    c = ledger.client
    _open(ledger, 1)
    ledger.vote(1, 0, h("poisoned"))  # Byzantine first
    ledger.vote(1, 1, h("honest"))
    ledger.vote(1, 2, h("honest"))
    assert c.round_status(1) == "open"
    assert ledger.vote(1, 3, h("honest")).event("Finalised") is not None
    assert c.latest_model() == h("honest")
    votes = c.votes(1)
    assert [v.model for v in votes] == [h("poisoned"), h("honest"), h("honest"), h("honest")]
    assert [v.agrees for v in votes] == [False, True, True, True]
    assert [v.agreed_when_cast for v in votes] == [False, False, False, True]
    assert [v.metrics for v in votes] == [h(f"metrics{i}") for i in range(4)]


def test_late_votes_are_recorded_after_finalisation(ledger: Ledger) -> None:
    c = ledger.client
    _open(ledger, 1)
    ledger.vote(1, 0, h("m1"))
    ledger.vote(1, 1, h("m1"))
    late = ledger.vote(1, 2, h("byzantine"))
    voted = late.event("Voted")
    assert voted is not None and voted.args["agrees"] is False
    info = c.round_info(1)
    assert (info.status, info.votes, info.support, info.model) == ("finalised", 3, 2, h("m1"))
    assert [v.agrees for v in c.votes(1)] == [True, True, False]


def test_agreeing_late_vote_adds_support(ledger: Ledger) -> None:
    _open(ledger, 1)
    for v in range(3):
        ledger.vote(1, v, h("m1"))
    assert ledger.client.round_info(1).support == 3
    assert [v.agreed_when_cast for v in ledger.client.votes(1)] == [False, True, True]


def test_round_without_quorum_fails_when_the_next_opens(ledger: Ledger) -> None:
    c = ledger.client
    _open(ledger, 1)
    ledger.vote(1, 0, h("a"))
    ledger.vote(1, 1, h("b"))
    with pytest.raises(TransactionReverted, match=r"^open_round: previous round still open$"):
        _open(ledger, 2)
    ledger.vote(1, 2, h("c"))
    receipt = c.open_round(2, GENESIS_MODEL, h("config"))
    failed = receipt.event("RoundFailed")
    assert failed is not None and failed.args == {"r": 1, "votes": 3}
    assert c.round_status(1) == "failed"
    assert c.round_status(2) == "open"
    assert c.latest_model() == GENESIS_MODEL
    with pytest.raises(TransactionReverted, match="round not open"):
        c.commit(1, ledger.roles.gateways[0], h("late"), 1)


def test_open_round_checks_order_and_base_model(ledger: Ledger) -> None:
    c = ledger.client
    with pytest.raises(TransactionReverted, match="round out of order"):
        c.open_round(2, GENESIS_MODEL, h("config"))
    with pytest.raises(TransactionReverted, match=r"^open_round: base is not the latest model$"):
        c.open_round(1, h("some other model"), h("config"))
    _open(ledger, 1)
    ledger.vote(1, 0, h("m1"))
    ledger.vote(1, 1, h("m1"))
    with pytest.raises(TransactionReverted, match="base is not the latest model"):
        c.open_round(2, GENESIS_MODEL, h("config"))
    c.open_round(2, h("m1"), h("config"))
    with pytest.raises(TransactionReverted, match="round out of order"):
        c.open_round(2, h("m1"), h("config"))


def test_commit_and_vote_need_an_open_round(ledger: Ledger) -> None:
    with pytest.raises(TransactionReverted, match=r"^commit: round not open$"):
        ledger.client.commit(1, ledger.roles.gateways[0], h("root"), 1)
    with pytest.raises(TransactionReverted, match=r"^vote: round not open$"):
        ledger.vote(1, 0, h("m"))


def test_payout_checks_the_finalised_rewards_digest_once(ledger: Ledger) -> None:
    c = ledger.client
    ids = [h(f"device{i}") for i in range(5)]
    amounts = [10, 20, 30, 40, 50]
    digest = rewards_digest(ids, amounts)
    _open(ledger, 1)
    with pytest.raises(TransactionReverted, match=r"^payout: round not finalised$"):
        c.payout(1, ids, amounts)
    ledger.vote(1, 0, h("m1"), digest)
    ledger.vote(1, 1, h("m1"), digest)
    with pytest.raises(TransactionReverted, match="rewards digest mismatch"):
        c.payout(1, ids, [10, 20, 30, 40, 51])
    receipt = c.payout(1, ids, amounts)
    paid = receipt.event("Paid")
    assert paid is not None and paid.args == {"r": 1, "total": 150}
    assert c.paid(1)
    with pytest.raises(TransactionReverted, match=r"^payout: already paid$"):
        c.payout(1, ids, amounts)
    assert c.balances() == dict(zip(ids, amounts, strict=True))
    assert c.balance_of(ids[4]) == 50
    assert c.treasury() == SUPPLY - 150


def test_stakes_penalties_and_conservation(ledger: Ledger) -> None:
    c = ledger.client
    device = Member(h(f"{ledger.roles.seed}/device"), "device", h("k"), 0)
    c.register([device])
    with pytest.raises(TransactionReverted, match="unknown member"):
        c.grant_stake(h("unregistered"), 5)
    c.grant_stake(device.id, 100)
    receipt = c.penalise(1, device.id, 30)
    assert receipt.event("Penalised") is not None
    assert receipt.events[0].args["amount"] == 30
    c.penalise(2, device.id, 1000)  # takes what is left
    assert c.stake_of(device.id) == 0
    assert c.stakes() == {device.id: 0}
    c.grant_stake(device.id, 40)
    with pytest.raises(TransactionReverted, match="treasury too small"):
        c.grant_stake(device.id, SUPPLY)
    assert c.treasury() + sum(c.balances().values()) + sum(c.stakes().values()) == SUPPLY


def test_gas_is_accounted_per_round(ledger: Ledger) -> None:
    c = ledger.client
    before = c.gas_by_round()
    assert before[0] > 0
    receipts = [c.open_round(1, GENESIS_MODEL, h("config"))]
    receipts += [c.commit(1, g, h("root"), 1) for g in ledger.roles.gateways]
    receipts += [ledger.vote(1, v, h("m1")) for v in range(3)]
    after = c.gas_by_round()
    assert after[0] == before[0]
    assert after[1] == sum(r.gas_used for r in receipts)
    assert all(r.round == 1 and r.status == 1 for r in receipts)
    assert [r.label for r in receipts[:2]] == ["open_round", "commit"]


def test_bad_arguments_fail_before_sending(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="base_digest must be 32 bytes"):
        ledger.client.open_round(1, b"short", h("config"))
    with pytest.raises(LedgerError, match="status must be one of"):
        ledger.client.set_status(h("x"), "gone", 0)
    with pytest.raises(LedgerError, match="needs an account"):
        Member(h("g"), "gateway", h("k"), 0)
