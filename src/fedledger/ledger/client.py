"""LedgerClient: the one API the rest of fedledger uses to talk to the ledger.

It deploys or attaches to the three contracts (Registry, Rounds, Token) on any
:class:`~fedledger.ledger.backends.base.ChainBackend`, sends each protocol step as one
transaction with a fixed gas limit; reading state back through views and events is inherited
from :class:`~fedledger.ledger.reader.LedgerReader`. Every
method that transacts returns a :class:`~fedledger.ledger.backends.base.Receipt` whose
``events`` are decoded; a revert raises :class:`~fedledger.ledger.backends.base.TransactionReverted`
(a :class:`~fedledger.errors.LedgerError`) with the message ``"<function>: <revert reason>"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from eth_account.signers.local import LocalAccount

from fedledger.errors import LedgerError
from fedledger.ledger.backends.base import ChainBackend, ContractCall, Receipt
from fedledger.ledger.contract import ZERO_ADDRESS
from fedledger.ledger.contracts.abi import ContractInterface
from fedledger.ledger.contracts.artifacts import CONTRACTS, load_artifact
from fedledger.ledger.reader import LedgerReader
from fedledger.ledger.records import (
    ROLES,
    STATUSES,
    Member,
    check_bytes32,
)

__all__ = ["BATCH", "GAS", "PAYOUT_MAX", "LedgerClient", "Receipt"]

BATCH = 64  # members per register_many transaction
PAYOUT_MAX = 256  # entries per payout transaction

# Gas limits: fixed per function (a few times the measured use), so no transaction is ever
# estimated. Batched calls get a base plus a per-entry amount.
GAS: dict[str, int] = {
    "deploy": 3_000_000,
    "register_many": 80_000,
    "register_many_per_member": 160_000,
    "set_status": 100_000,
    "register_measurement": 100_000,
    "revoke_measurement": 100_000,
    "open_round": 250_000,
    "commit": 250_000,
    "vote": 400_000,
    "grant_stake": 150_000,
    "payout": 200_000,
    "payout_per_entry": 60_000,
    "penalise": 120_000,
}


class LedgerClient(LedgerReader):
    """Deploy, drive and read the fedledger contracts on one chain backend.

    Use :meth:`deploy` for a new ledger or :meth:`attach` to existing contracts (after a
    replay or on a shared node). ``authority`` is the account that deployed the contracts and
    the only one allowed to register members, open rounds and move tokens.

    Attributes
    ----------
    backend
        The chain this client transacts on.
    authority
        The authority's account.
    addresses
        Contract addresses by name: ``{"Registry": ..., "Rounds": ..., "Token": ...}``.
    """

    def __init__(
        self, backend: ChainBackend, authority: LocalAccount, addresses: dict[str, str]
    ) -> None:
        super().__init__(backend, addresses)
        self.authority = authority

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def deploy(
        cls,
        backend: ChainBackend,
        authority: LocalAccount,
        *,
        quorum: int = 0,
        genesis_model: bytes,
        token_supply: int,
        round: int = 0,
    ) -> LedgerClient:
        """Deploy Registry, Rounds and Token from ``authority`` (three transactions).

        Parameters
        ----------
        quorum
            Identical votes that finalise a round; 0 means ⌈2n/3⌉ of the active validators
            counted at vote time.
        genesis_model
            sha256 digest of the initial global model: round 1 must be opened on it.
        token_supply
            Tokens minted into the treasury.
        """
        check_bytes32("genesis_model", genesis_model)
        if quorum < 0 or token_supply < 0:
            raise LedgerError("quorum and token_supply must not be negative")
        backend.fund([authority.address], round=round)

        def code(name: str, *args: Any) -> bytes:
            artifact = load_artifact(name)
            ctor = ContractInterface(name, artifact["abi"]).encode_constructor(*args)
            return bytes.fromhex(artifact["bytecode"].removeprefix("0x")) + ctor

        def deploy(name: str, *args: Any) -> str:
            receipt = backend.deploy(
                code(name, *args), authority, gas=GAS["deploy"], round=round, label=f"deploy:{name}"
            )
            assert receipt.contract_address is not None
            return receipt.contract_address

        registry = deploy("Registry")
        rounds = deploy("Rounds", registry, quorum, bytes(genesis_model))
        token = deploy("Token", rounds, registry, token_supply)
        return cls(backend, authority, {"Registry": registry, "Rounds": rounds, "Token": token})

    @classmethod
    def attach(
        cls, backend: ChainBackend, authority: LocalAccount, addresses: dict[str, str] | None = None
    ) -> LedgerClient:
        """Use contracts deployed earlier (e.g. after :meth:`EmbeddedChain.replay`).

        ``addresses`` defaults to the deployments the backend saw (its log), labelled
        ``deploy:<Name>``. Raises ``LedgerError`` if a contract is missing or was deployed by
        another authority.
        """
        if addresses is None:
            seen = backend.deployments()
            addresses = {n: seen[f"deploy:{n}"] for n in CONTRACTS if f"deploy:{n}" in seen}
        client = cls(backend, authority, addresses)
        client.check_authority(authority.address)
        return client

    # -- transactions ----------------------------------------------------------------------
    def _send(self, call: ContractCall, account: LocalAccount | None, round: int) -> Receipt:
        receipt = self.backend.send(call, account or self.authority, round=round)
        return self._decoded(receipt)

    def _decoded(self, receipt: Receipt) -> Receipt:
        events = []
        for log in receipt.logs:
            abi = self._by_address.get(log.address)
            event = abi.decode_log(log) if abi is not None else None
            if event is not None:
                events.append(event)
        return replace(receipt, events=tuple(events))

    def register(self, members: Sequence[Member], round: int = 0) -> list[Receipt]:
        """Register members (all active), 64 per transaction; funds gateway/validator accounts.

        Reverts (``LedgerError``) on an already registered id or an account used twice; the
        batches before the failing one stay registered.
        """
        accounts = [m.account for m in members if m.account is not None]
        if accounts:
            self.backend.fund(accounts, round=round)
        receipts = []
        for start in range(0, len(members), BATCH):
            batch = members[start : start + BATCH]
            call = self._registry.tx(
                "register_many",
                [m.id for m in batch],
                [ROLES[m.role] for m in batch],
                [m.key for m in batch],
                [m.cluster for m in batch],
                [m.account or ZERO_ADDRESS for m in batch],
                gas=GAS["register_many"] + GAS["register_many_per_member"] * len(batch),
            )
            receipts.append(self._send(call, None, round))
        return receipts

    def set_status(self, member_id: bytes, status: str | int, round: int) -> Receipt:
        """Revoke (``"revoked"`` or 2) or reactivate (``"active"`` or 1) a member."""
        code = STATUSES.get(status) if isinstance(status, str) else status
        if code not in STATUSES.values():
            raise LedgerError(
                f"set_status: status must be one of {sorted(STATUSES)} or 1/2, got {status!r}"
            )
        check_bytes32("member id", member_id)
        call = self._registry.tx("set_status", member_id, code, gas=GAS["set_status"])
        return self._send(call, None, round)

    def register_measurement(self, measurement: bytes, round: int = 0) -> Receipt:
        """Accept an enclave measurement (32 bytes)."""
        check_bytes32("measurement", measurement)
        call = self._registry.tx(
            "register_measurement", measurement, gas=GAS["register_measurement"]
        )
        return self._send(call, None, round)

    def revoke_measurement(self, measurement: bytes, round: int = 0) -> Receipt:
        """Stop accepting an enclave measurement."""
        check_bytes32("measurement", measurement)
        call = self._registry.tx("revoke_measurement", measurement, gas=GAS["revoke_measurement"])
        return self._send(call, None, round)

    def open_round(self, r: int, base_digest: bytes, config_digest: bytes) -> Receipt:
        """Open round ``r`` (= last round + 1) on the latest finalised model ``base_digest``.

        If the previous round is open, every active validator voted on it and no key reached
        the quorum, it is marked failed here (``RoundFailed`` event); otherwise this reverts
        with ``"previous round still open"``.
        """
        check_bytes32("base_digest", base_digest)
        check_bytes32("config_digest", config_digest)
        call = self._rounds.tx("open_round", r, base_digest, config_digest, gas=GAS["open_round"])
        return self._send(call, None, r)

    def commit(self, r: int, gateway: LocalAccount, root: bytes, count: int) -> Receipt:
        """A gateway's Merkle root of the ``count`` envelopes it accepted in round ``r``."""
        check_bytes32("root", root)
        call = self._rounds.tx("commit", r, root, count, gas=GAS["commit"])
        return self._send(call, gateway, r)

    def vote(
        self,
        r: int,
        validator: LocalAccount,
        model: bytes,
        accepted: bytes,
        rewards: bytes,
        metrics: bytes,
        quote: bytes,
    ) -> Receipt:
        """A validator's vote on round ``r``; the receipt holds ``Finalised`` if it completed
        the quorum (``receipt.event("Finalised")``)."""
        for what, value in (
            ("model", model),
            ("accepted", accepted),
            ("rewards", rewards),
            ("metrics", metrics),
            ("quote", quote),
        ):
            check_bytes32(what, value)
        call = self._rounds.tx("vote", r, model, accepted, rewards, metrics, quote, gas=GAS["vote"])
        return self._send(call, validator, r)

    def grant_stake(self, member_id: bytes, amount: int, round: int = 0) -> Receipt:
        """Move ``amount`` tokens from the treasury into a registered member's stake."""
        check_bytes32("member id", member_id)
        call = self._token.tx("grant_stake", member_id, amount, gas=GAS["grant_stake"])
        return self._send(call, None, round)

    def payout(self, r: int, ids: Sequence[bytes], amounts: Sequence[int]) -> Receipt:
        """Pay round ``r``'s rewards (at most 256 entries) from the treasury, once.

        ``sha256(abi.encode(ids, amounts))`` must equal the rewards digest finalised for
        ``r`` (see :func:`~fedledger.ledger.records.rewards_digest`).
        """
        if len(ids) > PAYOUT_MAX:
            raise LedgerError(f"payout: at most {PAYOUT_MAX} entries per round, got {len(ids)}")
        call = self._token.tx(
            "payout",
            r,
            list(ids),
            list(amounts),
            gas=GAS["payout"] + GAS["payout_per_entry"] * len(ids),
        )
        return self._send(call, None, r)

    def penalise(self, r: int, member_id: bytes, amount: int) -> Receipt:
        """Move min(amount, stake) of a member's stake back to the treasury."""
        check_bytes32("member id", member_id)
        call = self._token.tx("penalise", r, member_id, amount, gas=GAS["penalise"])
        return self._send(call, None, r)

    def seal(self) -> None:
        """End of a round: seal the block being filled (embedded chain with
        ``blocks="round"``; a no-op on other backends). Call it before checkpointing."""
        self.backend.seal()
