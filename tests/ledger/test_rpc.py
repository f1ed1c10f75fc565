"""JSON-RPC specifics against the Hardhat node: funding, logs, revert reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedledger.errors import LedgerError
from fedledger.ledger import LedgerClient, RpcChain, derive_account
from fedledger.ledger.backends.rpc import KEY_ENV, _RpcError
from tests.ledger.conftest import GENESIS_MODEL, h

# Hardhat's well-known dev account #1 (public test key, funded by every Hardhat node)
HARDHAT_KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


@pytest.mark.integration
def test_funding_from_the_key_in_the_environment(
    hardhat_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(KEY_ENV, HARDHAT_KEY_1)
    chain = RpcChain(hardhat_url, log_path=tmp_path / "rpc.jsonl")
    account = derive_account(501, "authority", 0)
    chain.fund([account.address])
    assert chain.balance(account.address) >= 10 * 10**18
    chain.close()
    record = json.loads((tmp_path / "rpc.jsonl").read_text().splitlines()[1])
    assert record["label"] == "fund" and record["raw"].startswith("0x02")


@pytest.mark.integration
def test_an_unfunded_key_is_a_clear_error(
    hardhat_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "0x" + "42" * 32)
    chain = RpcChain(hardhat_url)
    with pytest.raises(
        LedgerError, match=r"^fund: .*(insufficient funds|doesn't have enough funds)"
    ):
        chain.fund([derive_account(502, "authority", 0).address])
    monkeypatch.setenv(KEY_ENV, "not a key")
    with pytest.raises(LedgerError, match=f"^{KEY_ENV} does not hold a valid private key$"):
        RpcChain(hardhat_url)


@pytest.mark.integration
def test_log_is_verified_against_the_node_and_continued(hardhat_url: str, tmp_path: Path) -> None:
    log = tmp_path / "rpc.jsonl"
    authority = derive_account(503, "authority", 0)
    chain = RpcChain(hardhat_url, log_path=log)
    client = LedgerClient.deploy(chain, authority, genesis_model=GENESIS_MODEL, token_supply=10)
    client.register_measurement(h("m"), round=1)
    assert chain.verify_against_node() == 5  # fund, 3 deployments, 1 call
    gas = chain.gas_by_round()
    chain.close()
    reopened = RpcChain(hardhat_url, log_path=log)
    assert reopened.gas_by_round() == gas
    again = LedgerClient.attach(reopened, authority)
    assert again.addresses == client.addresses
    assert again.measurement_ok(h("m"))
    reopened.close()
    lines = log.read_text().splitlines()
    lines[3] = lines[3].replace('"status":1', '"status":0')
    log.write_text("\n".join(lines) + "\n")
    with pytest.raises(LedgerError, match=r"rpc\.jsonl:4: status: log has 0, node has 1"):
        RpcChain(hardhat_url, log_path=log).verify_against_node()


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (  # Hardhat
            {
                "message": "Error: VM Exception while processing transaction: "
                "reverted with reason string 'only authority'"
            },
            "only authority",
        ),
        (  # geth / anvil
            {
                "code": 3,
                "message": "execution reverted: only authority",
                "data": "0x08c379a0"
                "0000000000000000000000000000000000000000000000000000000000000020"
                "000000000000000000000000000000000000000000000000000000000000000e"
                "6f6e6c7920617574686f72697479000000000000000000000000000000000000",
            },
            "only authority",
        ),
        ({"message": "execution reverted"}, "execution reverted"),
    ],
)
def test_revert_reasons_are_read_from_node_errors(error: dict[str, object], reason: str) -> None:
    assert _RpcError("eth_call", error).reason() == reason
