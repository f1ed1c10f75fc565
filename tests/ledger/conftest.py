"""Ledger fixtures: a fresh chain per test on each backend, and a deployed ledger with roles.

The ``hardhat`` backend runs a local Hardhat 2 node (one per test worker) from
``tests/ledger/hardhat``; it needs ``npm ci --prefix tests/ledger/hardhat`` once, and fails
(never skips) without it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from fedledger.errors import LedgerError
from fedledger.ledger import (
    ChainBackend,
    EmbeddedChain,
    LedgerClient,
    Member,
    RpcChain,
    derive_account,
)

HARDHAT_DIR = Path(__file__).resolve().parent / "hardhat"
GENESIS_MODEL = hashlib.sha256(b"genesis model").digest()
SUPPLY = 1_000_000


def h(text: str) -> bytes:
    """A 32-byte digest of a label: the tests' ids, keys, roots and model digests."""
    return hashlib.sha256(text.encode()).digest()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def hardhat_url() -> Iterator[str]:
    """URL of a Hardhat 2 node started for this test session (killed at teardown)."""
    binary = HARDHAT_DIR / "node_modules" / ".bin" / "hardhat"
    if not binary.exists():
        pytest.fail(
            "Hardhat is not installed: run `npm ci --prefix tests/ledger/hardhat`", pytrace=False
        )
    if shutil.which("node") is None:
        pytest.fail(
            "Node.js is needed for the Hardhat tests (apt-get install nodejs)", pytrace=False
        )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(binary), "node", "--hostname", "127.0.0.1", "--port", str(port)],
        cwd=HARDHAT_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                RpcChain(url, request_timeout=2).close()
                break
            except LedgerError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    pytest.fail(f"the Hardhat node did not start: {err[-500:]}", pytrace=False)
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_SEEDS = iter(range(1000, 10**9))


@dataclass
class Roles:
    """Accounts of one test: the authority, gateways, validators and an outsider."""

    seed: int
    authority: LocalAccount
    gateways: list[LocalAccount]
    validators: list[LocalAccount]
    outsider: LocalAccount
    members: list[Member] = field(default_factory=list)

    @classmethod
    def make(cls, gateways: int = 2, validators: int = 3) -> Roles:
        seed = next(_SEEDS) + os.getpid() * 10_000  # distinct accounts per test and worker
        return cls(
            seed=seed,
            authority=derive_account(seed, "authority", 0),
            gateways=[derive_account(seed, "gateway", i) for i in range(gateways)],
            validators=[derive_account(seed, "validator", i) for i in range(validators)],
            outsider=derive_account(seed, "outsider", 0),
        )

    def addresses(self) -> list[str]:
        accounts = [self.authority, *self.gateways, *self.validators, self.outsider]
        return [a.address for a in accounts]

    def role_members(self) -> list[Member]:
        out = [
            Member(h(f"{self.seed}/gw{i}"), "gateway", h(f"gk{i}"), i, account=a.address)
            for i, a in enumerate(self.gateways)
        ]
        out += [
            Member(h(f"{self.seed}/val{i}"), "validator", h(f"vk{i}"), 0, account=a.address)
            for i, a in enumerate(self.validators)
        ]
        return out


ChainFactory = Callable[[Roles], ChainBackend]


@pytest.fixture(
    params=[
        "embedded",
        "embedded-round",
        pytest.param("hardhat", marks=pytest.mark.integration),
    ]
)
def make_chain(request: pytest.FixtureRequest) -> Iterator[ChainFactory]:
    """A factory for fresh backends of the parametrised kind (closed at teardown):
    the embedded chain with one block per transaction or per round, and a Hardhat node."""
    made: list[ChainBackend] = []

    def factory(roles: Roles) -> ChainBackend:
        chain: ChainBackend
        if request.param == "embedded":
            chain = EmbeddedChain(roles.addresses())
        elif request.param == "embedded-round":
            chain = EmbeddedChain(roles.addresses(), blocks="round")
        else:
            chain = RpcChain(request.getfixturevalue("hardhat_url"))
            chain.fund(roles.addresses())
        made.append(chain)
        return chain

    yield factory
    for chain in made:
        chain.close()


@dataclass
class Ledger:
    """A deployed ledger with its roles registered."""

    client: LedgerClient
    roles: Roles

    def vote(self, r: int, validator: int, model: bytes, rewards: bytes | None = None) -> object:
        return self.client.vote(
            r,
            self.roles.validators[validator],
            model,
            h("accepted"),
            rewards if rewards is not None else h("rewards"),
            h(f"metrics{validator}"),
            h("quote"),
        )


def deploy_ledger(
    make_chain: ChainFactory, *, gateways: int = 2, validators: int = 3, quorum: int = 0
) -> Ledger:
    """Deploy the contracts and register the gateways and validators."""
    roles = Roles.make(gateways, validators)
    chain = make_chain(roles)
    client = LedgerClient.deploy(
        chain, roles.authority, quorum=quorum, genesis_model=GENESIS_MODEL, token_supply=SUPPLY
    )
    roles.members = roles.role_members()
    client.register(roles.members)
    return Ledger(client, roles)


@pytest.fixture
def ledger(make_chain: ChainFactory) -> Ledger:
    """2 gateways, 3 validators, default quorum (2 of 3)."""
    return deploy_ledger(make_chain)
