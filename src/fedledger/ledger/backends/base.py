"""The one interface every ledger backend implements, and what they share.

A transaction is always built the same way, whatever the backend: an EIP-1559 transaction with
an explicit gas limit (never estimated), a nonce tracked locally per account, signed locally
with the account's key, and sent raw. Every mined transaction is appended to the backend's
transaction log (if it has one) before :meth:`ChainBackend.send` returns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from eth.abc import SignedTransactionAPI
from eth.vm.forks.shanghai.transactions import ShanghaiTransactionBuilder
from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import PrivateKey
from eth_typing import Address

from fedledger.errors import LedgerError
from fedledger.ledger.backends.txlog import TxLogWriter, TxRecord
from fedledger.ledger.contracts.abi import Event, RawLog

__all__ = [
    "ChainBackend",
    "ContractCall",
    "Mined",
    "Receipt",
    "SignedTx",
    "TransactionReverted",
]

_BUILDER = ShanghaiTransactionBuilder


@dataclass(frozen=True)
class ContractCall:
    """A contract function call ready to send: target, call data and the gas limit to give it.

    ``function`` names the call in errors and is the default log label.
    """

    to: str
    data: bytes
    gas: int
    function: str


@dataclass(frozen=True)
class Receipt:
    """What a mined transaction left: hashes, gas, status and logs.

    ``logs`` are raw; :class:`~fedledger.ledger.client.LedgerClient` returns receipts whose
    ``events`` hold the decoded ones. ``round`` and ``label`` are the tags given to ``send``.
    ``block_hash`` is ``""`` while the block is still open (an embedded chain that puts a
    round's transactions in one block seals it later; see :meth:`ChainBackend.seal`).
    """

    tx_hash: str
    block_number: int
    block_hash: str
    gas_used: int
    status: int
    round: int
    label: str
    contract_address: str | None = None
    logs: tuple[RawLog, ...] = ()
    events: tuple[Event, ...] = ()

    def event(self, name: str) -> Event | None:
        """The first decoded event called ``name``, if any."""
        return next((e for e in self.events if e.name == name), None)


class TransactionReverted(LedgerError):
    """A transaction was mined but reverted; the message is ``"<function>: <reason>"``."""

    def __init__(self, function: str, reason: str, receipt: Receipt | None) -> None:
        self.function = function
        self.reason = reason
        self.receipt = receipt
        super().__init__(f"{function}: {reason}")


@dataclass(frozen=True)
class SignedTx:
    """A locally signed transaction: raw bytes, hash, sender, nonce and py-evm object."""

    raw: bytes
    tx_hash: bytes
    sender: str
    nonce: int
    evm: SignedTransactionAPI


@dataclass(frozen=True)
class Mined:
    """What a backend's ``_execute`` reports back to the shared bookkeeping."""

    receipt: Receipt
    timestamp: int | None
    revert_reason: str | None


class ChainBackend(ABC):
    """An Ethereum chain the ledger client can deploy to, transact with and read.

    Subclasses provide funding, views, logs and the submission of a signed transaction; the
    base class signs (EIP-1559, explicit gas, nonces tracked locally), keeps gas per round and
    the contracts deployed, and appends every mined transaction to the log (``log_path``).

    Attributes
    ----------
    name
        Registry name of the backend (``"embedded"``, ``"rpc"``).
    chain_id
        The chain id transactions are signed for.
    """

    name: ClassVar[str]
    chain_id: int

    def __init__(self) -> None:
        self._nonces: dict[str, int] = {}
        self._keys: dict[str, PrivateKey] = {}
        self._gas_by_round: dict[int, int] = defaultdict(int)
        self._deployments: dict[str, str] = {}
        self._writer: TxLogWriter | None = None

    # -- what every backend provides -------------------------------------------------------
    @abstractmethod
    def fund(self, addresses: Sequence[str], *, round: int = 0) -> None:
        """Make sure each address can pay for its transactions (funding is logged)."""

    @abstractmethod
    def call(self, to: str, data: bytes) -> bytes:
        """Run a read-only call against the latest block; raises ``LedgerError`` on revert."""

    @abstractmethod
    def get_logs(
        self,
        address: str,
        topic0: bytes | None = None,
        topic1: bytes | None = None,
        from_block: int = 0,
    ) -> list[RawLog]:
        """Logs emitted by ``address``, optionally only those with the given first topics."""

    @abstractmethod
    def block_number(self) -> int:
        """Number of the latest mined block."""

    @abstractmethod
    def latest_block_hash(self) -> str:
        """Hash (0x-hex) of the latest mined block."""

    @abstractmethod
    def balance(self, address: str) -> int:
        """Ether balance of an address, in wei."""

    @abstractmethod
    def _fetch_nonce(self, address: str) -> int:
        """The next nonce of ``address`` according to the chain."""

    @abstractmethod
    def _fees(self, round: int) -> tuple[int, int]:
        """``(max_fee_per_gas, max_priority_fee_per_gas)`` for a transaction of this round."""

    @abstractmethod
    def _execute(self, tx: SignedTx, *, round: int, label: str) -> Mined:
        """Submit a signed transaction, wait until it is mined and report the outcome.

        Raises ``LedgerError`` only if the transaction was *not* mined (its nonce is unused).
        """

    # -- shared ----------------------------------------------------------------------------
    @property
    def log_path(self) -> Path | None:
        """The transaction log this backend appends to, if any."""
        return self._writer.path if self._writer is not None else None

    def send(
        self, call: ContractCall, account: LocalAccount, *, round: int, label: str | None = None
    ) -> Receipt:
        """Sign ``call`` with ``account``, send it and return its receipt once mined.

        Raises
        ------
        TransactionReverted
            If it was mined but reverted (it is still logged and its gas counted).
        LedgerError
            If the chain refused it outright.
        """
        return self._transact(
            account,
            to=call.to,
            data=call.data,
            gas=call.gas,
            round=round,
            label=label or call.function,
            what=call.function,
        )

    def deploy(
        self, code: bytes, account: LocalAccount, *, gas: int, round: int = 0, label: str
    ) -> Receipt:
        """Deploy ``code`` (bytecode plus encoded constructor arguments) from ``account``."""
        receipt = self._transact(
            account, to=None, data=code, gas=gas, round=round, label=label, what=label
        )
        if receipt.contract_address is None:
            raise LedgerError(f"{label}: no contract was created")
        return receipt

    def seal(self) -> None:
        """Seal the block being filled, if this backend fills blocks (a no-op otherwise).

        Call it at the end of a round, before checkpointing: a crash loses at most what was
        sent since the last seal.
        """
        return None

    def gas_by_round(self) -> dict[int, int]:
        """Gas used by all logged transactions, per round tag."""
        return dict(sorted(self._gas_by_round.items()))

    def deployments(self) -> dict[str, str]:
        """Contract addresses created so far, by the label of the deploying transaction."""
        return dict(self._deployments)

    def close(self) -> None:
        """Seal, release files and connections; the chain cannot be used afterwards."""
        self.seal()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _transact(
        self,
        account: LocalAccount,
        *,
        to: str | None,
        data: bytes,
        gas: int,
        round: int,
        label: str,
        what: str,
        value: int = 0,
    ) -> Receipt:
        address = account.address
        nonce = self._nonces.get(address)
        if nonce is None:
            nonce = self._fetch_nonce(address)
        tx = self._sign(account, nonce=nonce, to=to, data=data, gas=gas, value=value, round=round)
        try:
            mined = self._execute(tx, round=round, label=label)
        except LedgerError as exc:
            self._nonces.pop(address, None)
            raise LedgerError(f"{what}: {exc}") from exc
        self._nonces[address] = nonce + 1
        self._book(mined.receipt)
        if self._writer is not None:
            self._writer.append(self._record(tx, mined))
        if mined.receipt.status != 1:
            raise TransactionReverted(what, mined.revert_reason or "reverted", mined.receipt)
        return mined.receipt

    def _sign(
        self,
        account: LocalAccount,
        *,
        nonce: int,
        to: str | None,
        data: bytes,
        gas: int,
        value: int,
        round: int,
    ) -> SignedTx:
        address = account.address
        key = self._keys.get(address)
        if key is None:
            key = self._keys[address] = PrivateKey(bytes(account.key))
        max_fee, tip = self._fees(round)
        unsigned = _BUILDER.new_unsigned_dynamic_fee_transaction(
            chain_id=self.chain_id,
            nonce=nonce,
            max_priority_fee_per_gas=tip,
            max_fee_per_gas=max_fee,
            gas=gas,
            to=Address(bytes.fromhex(to[2:]) if to else b""),
            value=value,
            data=data,
            access_list=(),
        )
        signed = unsigned.as_signed_transaction(key)
        return SignedTx(
            raw=signed.encode(), tx_hash=signed.hash, sender=address, nonce=nonce, evm=signed
        )

    def _book(self, receipt: Receipt) -> None:
        """Shared bookkeeping for a mined transaction (also used when replaying a log)."""
        self._gas_by_round[receipt.round] += receipt.gas_used
        if receipt.contract_address is not None and receipt.status == 1:
            self._deployments[receipt.label] = receipt.contract_address

    @staticmethod
    def _record(tx: SignedTx | None, mined: Mined) -> TxRecord:
        r = mined.receipt
        return TxRecord(
            block=r.block_number,
            timestamp=mined.timestamp,
            raw="0x" + tx.raw.hex() if tx is not None else None,
            tx_hash=r.tx_hash,
            block_hash=r.block_hash or None,
            gas_used=r.gas_used,
            status=r.status,
            round=r.round,
            label=r.label,
            contract=r.contract_address,
        )
