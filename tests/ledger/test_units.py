"""Accounts, digests and ABI helpers of the ledger, without a chain."""

from __future__ import annotations

import hashlib

import pytest
from eth_abi import encode

from fedledger.errors import LedgerError
from fedledger.ledger import BACKENDS, EmbeddedChain, RpcChain, derive_account, rewards_digest
from fedledger.ledger.backends.base import ContractCall
from fedledger.ledger.contracts.abi import ContractInterface, RawLog
from fedledger.ledger.contracts.artifacts import load_artifact
from fedledger.ledger.records import agreement_key


def test_accounts_are_deterministic_and_distinct() -> None:
    a = derive_account(3, "validator", 0)
    assert a.address == derive_account(3, "validator", 0).address
    others = {
        derive_account(3, "validator", 1).address,
        derive_account(4, "validator", 0).address,
        derive_account(3, "gateway", 0).address,
    }
    assert a.address not in others and len(others) == 3
    with pytest.raises(LedgerError, match="role"):
        derive_account(3, "", 0)


def test_rewards_digest_is_sha256_of_the_abi_encoding() -> None:
    ids = [bytes([i]) * 32 for i in range(3)]
    amounts = [5, 0, 2**200]
    expected = hashlib.sha256(encode(["bytes32[]", "uint256[]"], [ids, amounts])).digest()
    assert rewards_digest(ids, amounts) == expected
    assert (
        rewards_digest([], [])
        == hashlib.sha256(encode(["bytes32[]", "uint256[]"], [[], []])).digest()
    )
    with pytest.raises(LedgerError, match="2 ids but 1 amounts"):
        rewards_digest(ids[:2], [1])


def test_agreement_key_is_keccak_of_the_three_digests() -> None:
    a, b, c = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
    assert agreement_key(a, b, c) != agreement_key(a, c, b)
    assert len(agreement_key(a, b, c)) == 32


def test_abi_round_trips_a_call_and_decodes_an_event() -> None:
    rounds = ContractInterface("Rounds", load_artifact("Rounds")["abi"])
    data = rounds.encode_call("commit", 3, b"\x09" * 32, 12)
    assert len(data) == 4 + 3 * 32
    log = RawLog(
        address="0x" + "11" * 20,
        topics=(rounds.topic("Committed"), (3).to_bytes(32, "big"), b"\x07" * 32),
        data=encode(["bytes32", "uint256"], [b"\x09" * 32, 12]),
        block_number=5,
        tx_hash="0x" + "22" * 32,
        log_index=0,
    )
    event = rounds.decode_log(log)
    assert event is not None
    assert (event.name, dict(event.args)) == (
        "Committed",
        {"r": 3, "gateway": b"\x07" * 32, "root": b"\x09" * 32, "count": 12},
    )
    with pytest.raises(LedgerError, match="takes 3 arguments, got 1"):
        rounds.encode_call("commit", 3)
    with pytest.raises(LedgerError, match="no function 'nope'"):
        rounds.encode_call("nope")


def test_backends_registry() -> None:
    assert {"embedded": EmbeddedChain, "rpc": RpcChain} == BACKENDS


def test_unreachable_node_is_a_one_line_error() -> None:
    with pytest.raises(
        LedgerError, match=r"^cannot reach an Ethereum node at http://127\.0\.0\.1:9 "
    ):
        RpcChain("http://127.0.0.1:9", request_timeout=2)


def test_unknown_block_mode_is_refused() -> None:
    with pytest.raises(LedgerError, match="blocks must be one of"):
        EmbeddedChain(blocks="hourly")


@pytest.mark.parametrize("blocks", ["transaction", "round"])
def test_an_invalid_transaction_leaves_no_trace(blocks: str) -> None:
    payer, broke = derive_account(21, "authority", 0), derive_account(21, "broke", 0)
    chain = EmbeddedChain([payer.address], blocks=blocks)
    call = ContractCall(to=payer.address, data=b"", gas=21_000, function="ping")
    chain.send(call, payer, round=0)
    with pytest.raises(LedgerError, match=r"^ping: invalid transaction: .*afford"):
        chain.send(call, broke, round=0)
    chain.send(call, payer, round=0)
    assert chain.gas_by_round() == {0: 42_000}
    assert chain.block_number() == (2 if blocks == "transaction" else 1)


def test_a_round_block_is_sealed_when_the_next_gas_limit_does_not_fit() -> None:
    payer = derive_account(22, "authority", 0)
    chain = EmbeddedChain([payer.address], blocks="round")
    big = ContractCall(to=payer.address, data=b"", gas=30_000_000, function="ping")
    receipts = [chain.send(big, payer, round=1) for _ in range(3)]
    assert [r.block_number for r in receipts] == [1, 1, 2]  # block gas limit 30,029,122
    assert chain.block_number() == 2
