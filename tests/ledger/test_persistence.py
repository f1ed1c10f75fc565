"""The embedded chain is deterministic, and its transaction log replays hash for hash; any
edit, drop, swap or truncation of the log is caught and named by line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fedledger.errors import LedgerError
from fedledger.ledger import EmbeddedChain, LedgerClient, Member, derive_account, rewards_digest
from tests.ledger.conftest import GENESIS_MODEL, SUPPLY, h

SEED = 7
AUTHORITY = derive_account(SEED, "authority", 0)
GATEWAYS = [derive_account(SEED, "gateway", i) for i in range(2)]
VALIDATORS = [derive_account(SEED, "validator", i) for i in range(3)]
ACCOUNTS = [a.address for a in [AUTHORITY, *GATEWAYS, *VALIDATORS]]
DEVICES = [Member(h(f"device{i}"), "device", h(f"dk{i}"), i % 2) for i in range(4)]


BLOCKS = ["transaction", "round"]


def start(log: Path | None, blocks: str = "transaction") -> LedgerClient:
    """Deploy and register everyone (round 0)."""
    chain = EmbeddedChain(ACCOUNTS, log_path=log, blocks=blocks)
    client = LedgerClient.deploy(chain, AUTHORITY, genesis_model=GENESIS_MODEL, token_supply=SUPPLY)
    members = DEVICES + [
        Member(h(f"gw{i}"), "gateway", h(f"gk{i}"), i, account=a.address)
        for i, a in enumerate(GATEWAYS)
    ]
    members += [
        Member(h(f"val{i}"), "validator", h(f"vk{i}"), 0, account=a.address)
        for i, a in enumerate(VALIDATORS)
    ]
    client.register(members)
    client.grant_stake(DEVICES[0].id, 50)
    return client


def play(client: LedgerClient, first: int, last: int) -> None:
    """Rounds first..last: open, commits, votes (one dissenting), payout, a penalty."""
    ids = [d.id for d in DEVICES]
    for r in range(first, last + 1):
        amounts = [r, 2 * r, 0, 1]
        digest = rewards_digest(ids, amounts)
        client.open_round(r, client.latest_model(), h(f"config{r}"))
        for g in GATEWAYS:
            client.commit(r, g, h(f"root{r}/{g.address}"), 3)
        for i, v in enumerate(VALIDATORS):
            model = h(f"model{r}") if i < 2 else h("dissent")
            client.vote(r, v, model, h("acc"), digest, h(f"metrics{i}"), h("quote"))
        client.payout(r, ids, amounts)
        client.penalise(r, DEVICES[0].id, 3)


@pytest.fixture
def logged(tmp_path: Path) -> tuple[Path, EmbeddedChain]:
    """A log of registration plus 3 rounds, one block per transaction, and its chain (closed)."""
    return _logged(tmp_path, "transaction")


@pytest.fixture
def logged_round(tmp_path: Path) -> tuple[Path, EmbeddedChain]:
    """The same with one block per round."""
    return _logged(tmp_path, "round")


def _logged(tmp_path: Path, blocks: str) -> tuple[Path, EmbeddedChain]:
    log = tmp_path / "ledger.jsonl"
    client = start(log, blocks)
    play(client, 1, 3)
    chain = client.backend
    assert isinstance(chain, EmbeddedChain)
    chain.close()
    return log, chain


@pytest.mark.parametrize("blocks", BLOCKS)
def test_same_inputs_give_the_same_chain(tmp_path: Path, blocks: str) -> None:
    a, b = start(tmp_path / "a.jsonl", blocks), start(tmp_path / "b.jsonl", blocks)
    play(a, 1, 2)
    play(b, 1, 2)
    assert a.backend.latest_block_hash() == b.backend.latest_block_hash()
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


@pytest.mark.parametrize("fixture", ["logged", "logged_round"])
def test_replay_reproduces_every_block(request: pytest.FixtureRequest, fixture: str) -> None:
    log, original = request.getfixturevalue(fixture)
    replayed = EmbeddedChain.replay(log)
    assert replayed.blocks == original.blocks
    assert replayed.block_number() == original.block_number() > (20 if fixture == "logged" else 3)
    for n in range(original.block_number() + 1):
        assert replayed.block_hash(n) == original.block_hash(n)
    assert replayed.state_root() == original.state_root()
    assert replayed.gas_by_round() == original.gas_by_round()
    client = LedgerClient.attach(replayed, AUTHORITY)
    assert client.round_info(3).status == "finalised"
    assert [v.agrees for v in client.votes(3)] == [True, True, False]
    assert (
        client.treasury() + sum(client.balances().values()) + sum(client.stakes().values())
        == SUPPLY
    )
    # the web3 view over eth-tester sees the same chain
    assert replayed.w3.eth.get_block("latest")["hash"].to_0x_hex() == replayed.latest_block_hash()


@pytest.mark.parametrize("fixture", ["logged", "logged_round"])
def test_replayed_chain_keeps_logging(request: pytest.FixtureRequest, fixture: str) -> None:
    log, _ = request.getfixturevalue(fixture)
    client = LedgerClient.attach(EmbeddedChain.replay(log), AUTHORITY)
    play(client, 4, 4)
    client.backend.close()
    again = EmbeddedChain.replay(log)
    assert again.latest_block_hash() == client.backend.latest_block_hash()
    assert max(again.gas_by_round()) == 4


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines(keepends=True)


def _edit_field(line: str, key: str, change: Callable[[object], object]) -> str:
    record = json.loads(line)
    record[key] = change(record[key])
    return json.dumps(record, separators=(",", ":")) + "\n"


def _flip_raw_byte(line: str) -> str:
    raw = json.loads(line)["raw"]
    i = len(raw) // 2
    flipped = raw[:i] + format(int(raw[i], 16) ^ 0x1, "x") + raw[i + 1 :]
    return _edit_field(line, "raw", lambda _: flipped)


TAMPERING: dict[str, tuple[Callable[[list[str]], list[str]], int, str]] = {
    # name: (edit, line number blamed, message fragment)
    "flip a raw tx byte": (
        lambda ls: [*ls[:9], _flip_raw_byte(ls[9]), *ls[10:]],
        10,
        "(tx hash differs|does not decode)",
    ),
    "edit a block hash": (
        lambda ls: [
            *ls[:12],
            _edit_field(ls[12], "block_hash", lambda _: "0x" + "ab" * 32),
            *ls[13:],
        ],
        13,
        "block hash differs",
    ),
    "edit gas used": (
        lambda ls: [*ls[:12], _edit_field(ls[12], "gas_used", lambda g: int(str(g)) + 1), *ls[13:]],
        13,
        "gas used differs",
    ),
    "edit a status": (
        lambda ls: [*ls[:12], _edit_field(ls[12], "status", lambda s: 1 - int(str(s))), *ls[13:]],
        13,
        "status differs",
    ),
    "drop a line": (
        lambda ls: [*ls[:7], *ls[8:]],
        8,
        "records block 8 but the chain is at block 7",
    ),
    "swap two lines": (lambda ls: [*ls[:7], ls[8], ls[7], *ls[9:]], 8, "records block 8"),
    "truncate the last line": (lambda ls: [*ls[:-1], ls[-1][:-30]], -1, "truncated line"),
    "cut the last newline": (lambda ls: [*ls[:-1], ls[-1][:-1]], -1, "truncated line"),
    "duplicate a line": (lambda ls: [*ls[:8], ls[7], *ls[8:]], 9, "records block 7"),
    "edit the genesis": (
        lambda ls: [ls[0].replace('"timestamp":1700000000', '"timestamp":1700000001'), *ls[1:]],
        1,
        "genesis hash differs",
    ),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_tampered_log_is_rejected_naming_the_line(
    logged: tuple[Path, EmbeddedChain], name: str
) -> None:
    log, _ = logged
    edit, line, message = TAMPERING[name]
    lines = _lines(log)
    log.write_text("".join(edit(lines)))
    blamed = len(lines) if line == -1 else line
    with pytest.raises(LedgerError, match=rf"ledger\.jsonl:{blamed}: .*{message}"):
        EmbeddedChain.replay(log)


@pytest.mark.parametrize("blocks", BLOCKS)
def test_resume_upto_round_equals_an_uninterrupted_run(tmp_path: Path, blocks: str) -> None:
    straight = start(tmp_path / "straight.jsonl", blocks)
    play(straight, 1, 5)

    crashed_log = tmp_path / "crashed.jsonl"
    crashed = start(crashed_log, blocks)
    play(crashed, 1, 4)
    crashed.open_round(5, crashed.latest_model(), h("config5"))  # round 5 was in progress
    crashed.backend.close()
    with crashed_log.open("a") as fh:
        fh.write('{"kind":"tx","block":')  # and a torn write

    resumed_chain = EmbeddedChain.replay(crashed_log, upto_round=3)
    assert max(resumed_chain.gas_by_round()) == 3
    assert all(json.loads(line)["round"] <= 3 for line in _lines(crashed_log)[1:])
    resumed = LedgerClient.attach(resumed_chain, AUTHORITY)
    assert resumed.last_round() == 3
    play(resumed, 4, 5)
    assert resumed_chain.latest_block_hash() == straight.backend.latest_block_hash()
    resumed_chain.close()
    straight.backend.close()
    assert crashed_log.read_bytes() == (tmp_path / "straight.jsonl").read_bytes()


def test_new_log_refuses_to_overwrite(logged: tuple[Path, EmbeddedChain]) -> None:
    log, _ = logged
    with pytest.raises(LedgerError, match="already holds a ledger log"):
        EmbeddedChain(ACCOUNTS, log_path=log)


def test_funding_an_address_missing_from_the_genesis_is_logged(tmp_path: Path) -> None:
    log = tmp_path / "ledger.jsonl"
    chain = EmbeddedChain([], log_path=log)
    client = LedgerClient.deploy(chain, AUTHORITY, genesis_model=GENESIS_MODEL, token_supply=1)
    assert chain.balance(AUTHORITY.address) > 0
    chain.close()
    labels = [json.loads(line)["label"] for line in _lines(log)[1:]]
    assert labels == ["fund", "deploy:Registry", "deploy:Rounds", "deploy:Token"]
    assert EmbeddedChain.replay(log).latest_block_hash() == client.backend.latest_block_hash()


def test_round_blocks_hold_a_round_each(logged_round: tuple[Path, EmbeddedChain]) -> None:
    log, chain = logged_round
    records = [json.loads(line) for line in _lines(log)[1:]]
    blocks = [r for r in records if r["kind"] == "block"]
    assert [b["round"] for b in blocks] == [0, 1, 2, 3]
    assert chain.block_number() == 4
    txs = [r for r in records if r["kind"] == "tx"]
    assert all(r["block_hash"] is None for r in txs)
    assert sum(b["transactions"] for b in blocks) == len(txs)
    for b in blocks:
        assert {r["block"] for r in txs if r["round"] == b["round"]} == {b["block"]}


def test_round_blocks_resume_after_a_crash_before_sealing(tmp_path: Path) -> None:
    straight = start(tmp_path / "straight.jsonl", "round")
    play(straight, 1, 4)
    straight.backend.close()

    crashed_log = tmp_path / "crashed.jsonl"
    crashed = start(crashed_log, "round")
    play(crashed, 1, 3)  # round 3 is logged but its block never sealed: no block line
    assert json.loads(_lines(crashed_log)[-1])["kind"] == "tx"
    resumed = LedgerClient.attach(EmbeddedChain.replay(crashed_log, upto_round=3), AUTHORITY)
    play(resumed, 4, 4)
    resumed.backend.close()
    assert crashed_log.read_bytes() == (tmp_path / "straight.jsonl").read_bytes()


ROUND_TAMPERING: dict[str, tuple[Callable[[list[str]], list[str]], int, str]] = {
    "flip a raw tx byte": (
        lambda ls: [*ls[:9], _flip_raw_byte(ls[9]), *ls[10:]],
        10,
        "(tx hash differs|does not decode)",
    ),
    "drop a transaction of a block": (
        lambda ls: [*ls[:9], *ls[10:]],
        15,
        "block 2 records 8 transactions of round 1, replay has 7",
    ),
    "drop a transaction of the same sender": (
        lambda ls: [*ls[:2], *ls[3:]],  # the 2nd of three deployments by the authority
        3,
        "invalid transaction: Invalid transaction nonce: Expected 1, but got 2",
    ),
    "drop a block line": (
        lambda ls: [line for line in ls if '"block":1,"block_hash":"0x' not in line],
        -1,
        "records block 2 but the chain is at block 1",
    ),
    "edit a block line's hash": (
        lambda ls: [
            _edit_field(line, "block_hash", lambda _: "0x" + "cd" * 32)
            if line.startswith('{"kind":"block","block":2,')
            else line
            for line in ls
        ],
        16,
        "block hash differs",
    ),
    "truncate the last line": (lambda ls: [*ls[:-1], ls[-1][:-10]], -1, "truncated line"),
}


@pytest.mark.parametrize("name", list(ROUND_TAMPERING))
def test_tampered_round_log_is_rejected(
    logged_round: tuple[Path, EmbeddedChain], name: str
) -> None:
    log, _ = logged_round
    edit, line, message = ROUND_TAMPERING[name]
    lines = _lines(log)
    tampered = edit(lines)
    log.write_text("".join(tampered))
    with pytest.raises(LedgerError, match=rf"ledger\.jsonl:(\d+): .*{message}") as err:
        EmbeddedChain.replay(log)
    if line > 0:
        assert f"ledger.jsonl:{line}:" in str(err.value)
