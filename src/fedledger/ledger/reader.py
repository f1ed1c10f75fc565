"""LedgerReader: what anyone (an auditor, a device) can read from the three contracts.

Every read is a view call or a scan of the contracts' events; nothing here needs a key.
:class:`~fedledger.ledger.client.LedgerClient` adds the authority's and members'
transactions on top.
"""

from __future__ import annotations

from dataclasses import replace

from eth_utils.address import to_checksum_address

from fedledger.errors import LedgerError
from fedledger.ledger.backends.base import ChainBackend
from fedledger.ledger.contract import ZERO_ADDRESS, BoundContract, round_topic
from fedledger.ledger.contracts.abi import ContractInterface
from fedledger.ledger.contracts.artifacts import CONTRACTS
from fedledger.ledger.records import (
    ROLES,
    ROUND_STATUSES,
    STATUSES,
    CommitRecord,
    Member,
    RoundInfo,
    VoteRecord,
    agreement_key,
)

__all__ = ["LedgerReader"]

_ROLE_NAMES = {code: name for name, code in ROLES.items()}
_STATUS_NAMES = {code: name for name, code in STATUSES.items()}


class LedgerReader:
    """Reads the Registry, Rounds and Token contracts deployed at ``addresses``.

    Attributes
    ----------
    backend
        The chain the contracts live on.
    addresses
        Contract addresses by name: ``{"Registry": ..., "Rounds": ..., "Token": ...}``.
    """

    def __init__(self, backend: ChainBackend, addresses: dict[str, str]) -> None:
        missing = [name for name in CONTRACTS if name not in addresses]
        if missing:
            raise LedgerError(f"no address for contract(s) {', '.join(missing)}")
        self.backend = backend
        self.addresses = {name: to_checksum_address(addresses[name]) for name in CONTRACTS}
        self._registry = BoundContract(backend, "Registry", self.addresses["Registry"])
        self._rounds = BoundContract(backend, "Rounds", self.addresses["Rounds"])
        self._token = BoundContract(backend, "Token", self.addresses["Token"])
        self._by_address: dict[str, ContractInterface] = {
            c.address: c.abi for c in (self._registry, self._rounds, self._token)
        }

    def check_authority(self, address: str) -> None:
        """Raise ``LedgerError`` unless all three contracts exist and belong to ``address``."""
        for contract in (self._registry, self._rounds, self._token):
            try:
                (owner,) = contract.view("authority")
            except LedgerError as exc:
                raise LedgerError(
                    f"attach: no {contract.name} at {contract.address} ({exc})"
                ) from None
            owner = to_checksum_address(owner)
            if owner != to_checksum_address(address):
                raise LedgerError(
                    f"attach: {contract.name} at {contract.address} belongs to {owner}, "
                    f"not {address}"
                )

    def round_info(self, r: int) -> RoundInfo:
        """Everything the Rounds contract keeps about round ``r`` (one view call)."""
        ((status, base, config, model, accepted, rewards, votes, support, commits),) = (
            self._rounds.view("round_info", r)
        )
        return RoundInfo(
            round=r,
            status=ROUND_STATUSES[status],
            base=base,
            config=config,
            model=model,
            accepted=accepted,
            rewards=rewards,
            votes=votes,
            support=support,
            commits=commits,
        )

    def round_status(self, r: int) -> str:
        """``"none"``, ``"open"``, ``"finalised"`` or ``"failed"``."""
        return ROUND_STATUSES[int(self._rounds.view("round_status", r)[0])]

    def latest_model(self) -> bytes:
        """Digest of the latest finalised model (the genesis model before any)."""
        return bytes(self._rounds.view("latest_model")[0])

    def last_round(self) -> int:
        """Number of the last opened round (0 before any)."""
        return int(self._rounds.view("last_round")[0])

    def quorum_setting(self) -> int:
        """The quorum the Rounds contract was deployed with (0 = ⌈2n/3⌉)."""
        return int(self._rounds.view("quorum")[0])

    def genesis_model(self) -> bytes:
        """Digest of the initial model round 1 had to be opened on."""
        return bytes(self._rounds.view("genesis_model")[0])

    def quorum_needed(self) -> int:
        """Identical votes needed now to finalise a round."""
        return int(self._rounds.view("quorum_needed")[0])

    def validator_count(self) -> int:
        """Number of active validators."""
        return int(self._registry.view("validator_count")[0])

    def measurement_ok(self, measurement: bytes) -> bool:
        """Whether an enclave measurement is currently accepted."""
        return bool(self._registry.view("measurement_ok", measurement)[0])

    def member(self, member_id: bytes) -> Member | None:
        """One member by id (a view call), or ``None`` if unknown."""
        ((role, key, cluster, status, account),) = self._registry.view("member", member_id)
        if status == 0:
            return None
        return Member(
            id=bytes(member_id),
            role=_ROLE_NAMES[role],
            key=key,
            cluster=cluster,
            status=_STATUS_NAMES[status],
            account=None if account == ZERO_ADDRESS else to_checksum_address(account),
        )

    def members(self) -> list[Member]:
        """Every registered member in registration order, with its current status (events)."""
        by_id: dict[bytes, Member] = {}
        for e in self._registry.events("Registered"):
            a = e.args
            account = None if int(a["account"], 16) == 0 else to_checksum_address(a["account"])
            by_id[a["id"]] = Member(
                id=a["id"],
                role=_ROLE_NAMES[a["role"]],
                key=a["key"],
                cluster=a["cluster"],
                account=account,
            )
        for e in sorted(
            self._registry.events("StatusChanged"), key=lambda e: (e.block_number, e.log_index)
        ):
            old = by_id[e.args["id"]]
            by_id[e.args["id"]] = replace(old, status=_STATUS_NAMES[e.args["status"]])
        return list(by_id.values())

    def commits(self, r: int) -> list[CommitRecord]:
        """The gateways' commits to round ``r``, in chain order."""
        return [
            CommitRecord(
                round=r,
                gateway=e.args["gateway"],
                root=e.args["root"],
                count=e.args["count"],
                tx_hash=e.tx_hash,
                block_number=e.block_number,
            )
            for e in self._rounds.events("Committed", round_topic(r))
        ]

    def votes(self, r: int) -> list[VoteRecord]:
        """Every vote on round ``r`` in chain order, outvoted ones included."""
        events = self._rounds.events("Voted", round_topic(r))
        final = None
        if events:
            info = self.round_info(r)
            if info.finalised:
                final = agreement_key(info.model, info.accepted, info.rewards)
        return [
            VoteRecord(
                round=r,
                validator=e.args["validator"],
                model=e.args["model"],
                accepted=e.args["accepted"],
                rewards=e.args["rewards"],
                metrics=e.args["metrics"],
                quote=e.args["quote"],
                agrees=final is not None
                and agreement_key(e.args["model"], e.args["accepted"], e.args["rewards"]) == final,
                agreed_when_cast=e.args["agrees"],
                tx_hash=e.tx_hash,
                block_number=e.block_number,
            )
            for e in events
        ]

    def balances(self) -> dict[bytes, int]:
        """Token balance of every id ever paid, rebuilt from ``Credited`` events."""
        out: dict[bytes, int] = {}
        for e in self._token.events("Credited"):
            out[e.args["id"]] = out.get(e.args["id"], 0) + e.args["amount"]
        return out

    def credits(self) -> dict[int, list[tuple[bytes, int]]]:
        """Every round's payout as ``(id, amount)`` in payout order, from ``Credited`` events
        (what ``sha256(abi.encode(ids, amounts))`` was checked over)."""
        out: dict[int, list[tuple[bytes, int]]] = {}
        for e in self._token.events("Credited"):
            out.setdefault(int(e.args["r"]), []).append((e.args["id"], int(e.args["amount"])))
        return out

    def stakes(self) -> dict[bytes, int]:
        """Stake of every id ever granted one, from ``StakeGranted``/``Penalised`` events."""
        out: dict[bytes, int] = {}
        for e in self._token.events("StakeGranted"):
            out[e.args["id"]] = out.get(e.args["id"], 0) + e.args["amount"]
        for e in self._token.events("Penalised"):
            out[e.args["id"]] = out.get(e.args["id"], 0) - e.args["amount"]
        return out

    def balance_of(self, member_id: bytes) -> int:
        """Token balance of one id (a view call)."""
        return int(self._token.view("balance_of", member_id)[0])

    def stake_of(self, member_id: bytes) -> int:
        """Stake of one id (a view call)."""
        return int(self._token.view("stake_of", member_id)[0])

    def treasury(self) -> int:
        """Tokens held by the treasury."""
        return int(self._token.view("treasury")[0])

    def total_supply(self) -> int:
        """Tokens minted at deployment (constant)."""
        return int(self._token.view("total_supply")[0])

    def paid(self, r: int) -> bool:
        """Whether round ``r``'s rewards were paid."""
        return bool(self._token.view("paid", r)[0])

    def gas_by_round(self) -> dict[int, int]:
        """Gas used per round tag by every transaction this backend logged (deployment and
        registration are round 0 unless tagged otherwise)."""
        return self.backend.gas_by_round()
