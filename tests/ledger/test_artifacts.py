"""The committed contract artifacts are exactly what the pinned Vyper makes of the sources."""

from __future__ import annotations

import hashlib

import pytest

from fedledger.errors import LedgerError
from fedledger.ledger.contracts.artifacts import (
    CONTRACTS,
    EVM_VERSION,
    VYPER_VERSION,
    compile_contract,
    load_artifact,
    source_path,
)


@pytest.mark.parametrize("name", CONTRACTS)
def test_committed_artifact_matches_a_fresh_compile(name: str) -> None:
    pytest.importorskip("vyper", reason="vyper is in the test extra")
    committed = load_artifact(name)
    fresh = compile_contract(name)
    source = source_path(name).read_bytes()
    assert committed["source_sha256"] == hashlib.sha256(source).hexdigest(), (
        f"{name}.vy changed: run `python -m fedledger.ledger.contracts`"
    )
    assert committed["abi"] == fresh["abi"]
    assert committed["bytecode"] == fresh["bytecode"]
    assert (committed["vyper_version"], committed["evm_version"]) == (VYPER_VERSION, EVM_VERSION)


def test_unknown_contract_is_refused() -> None:
    with pytest.raises(
        LedgerError, match="unknown contract 'Nope'; known: Registry, Rounds, Token"
    ):
        load_artifact("Nope")
