"""A deterministic block builder over py-evm, used by the embedded chain.

Transactions are applied to a pending block as they arrive (their receipts, logs and state
changes are available at once) and the block is sealed on demand. Sealing computes the state
root and the block hash: block timestamps and ``prevrandao`` are derived from the block number,
never from the clock, so the same transactions in the same blocks give the same hashes on every
machine. This is ``MiningChain.mine_all`` split in two, without its re-validation and re-reading
of the block it has just built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, VirtualMachineAPI
from eth.exceptions import Revert
from eth.vm.forks.shanghai import ShanghaiVM
from eth_abi.abi import decode as abi_decode
from eth_tester.backends.pyevm.main import PyEVMBackend
from eth_typing import Address
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError as EVMValidationError

from fedledger.errors import LedgerError
from fedledger.ledger.contracts.abi import RawLog

__all__ = ["Applied", "Miner", "canonical"]

VIEW_GAS = 30_000_000
_ZERO_ADDRESS = Address(b"\x00" * 20)
_ERROR_SELECTOR = bytes.fromhex("08c379a0")


def canonical(address: str) -> Address:
    """20-byte form of a 0x-hex address."""
    return Address(bytes.fromhex(address[2:].lower()))


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def revert_reason(error: Exception) -> str:
    """The ``Error(string)`` reason of a failed computation, or a short description."""
    if isinstance(error, Revert):
        data = error.args[0] if error.args else b""
        if isinstance(data, bytes) and data[:4] == _ERROR_SELECTOR:
            try:
                return str(abi_decode(("string",), data[4:])[0])
            except Exception:  # a malformed Error(string) payload
                return "reverted"
        return "reverted"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


@dataclass(frozen=True)
class Applied:
    """One transaction applied to the pending block."""

    block_number: int
    timestamp: int
    tx_hash: str
    gas_used: int
    success: bool
    reason: str | None
    created: str | None
    logs: tuple[RawLog, ...]


@dataclass
class _Pending:
    number: int
    timestamp: int
    tag: Any
    vm: VirtualMachineAPI
    header: BlockHeaderAPI
    txs: list[SignedTransactionAPI] = field(default_factory=list)
    receipts: list[ReceiptAPI] = field(default_factory=list)


class Miner:
    """py-evm chain (Shanghai rules) with deterministic, on-demand block sealing.

    Parameters
    ----------
    params
        Genesis header parameters (``timestamp``, ``gas_limit``, ...).
    state
        Genesis allocations: canonical address -> ``{"balance", "nonce", "code", "storage"}``.
    block_time
        Seconds between block timestamps.
    """

    def __init__(self, params: dict[str, Any], state: dict[Address, Any], block_time: int) -> None:
        self.backend = PyEVMBackend(
            genesis_parameters=params, genesis_state=state, vm_configuration=((0, ShanghaiVM),)
        )
        self.chain = self.backend.chain
        self.chain_id = int(self.chain.chain_id)
        self._t0 = int(params["timestamp"])
        self._block_time = block_time
        self._pending: _Pending | None = None
        self._view_vm: VirtualMachineAPI | None = None
        self._code: dict[bytes, bytes] = {}
        self._logs: dict[tuple[str, bytes], list[RawLog]] = {}
        self._logs_by_address: dict[str, list[RawLog]] = {}

    # -- blocks ----------------------------------------------------------------------------
    @property
    def pending(self) -> tuple[int, Any, int] | None:
        """``(block number, tag, transactions)`` of the unsealed block, if any."""
        p = self._pending
        return None if p is None else (p.number, p.tag, len(p.txs))

    def next_block_number(self) -> int:
        """Number of the block the next transaction goes into if nothing is pending."""
        return int(self.chain.header.block_number)

    def fits(self, tx: SignedTransactionAPI) -> bool:
        """Whether ``tx``'s gas limit still fits the pending block."""
        p = self._pending
        return p is None or p.header.gas_used + tx.gas <= p.header.gas_limit

    def apply(self, tx: SignedTransactionAPI, tag: Any) -> Applied:
        """Execute ``tx`` in the pending block (opened with ``tag`` if there is none).

        Raises ``LedgerError`` if the transaction is invalid (nonce, balance, gas limit); it
        then leaves no trace.
        """
        p = self._pending
        if p is None:
            number = self.next_block_number()
            timestamp = self._t0 + self._block_time * number
            header = self.chain.header.copy(timestamp=timestamp)
            p = _Pending(number, timestamp, tag, self.chain.get_vm(header), header)
        try:
            # py-evm validates (nonce, balance, gas limit) before it changes any state
            receipt, computation = p.vm.apply_transaction(p.header, tx)
        except EVMValidationError as exc:
            raise LedgerError(f"invalid transaction: {exc}") from None
        gas_before = p.header.gas_used
        first_log = sum(len(r.logs) for r in p.receipts)
        p.header = p.vm.add_receipt_to_header(p.header, receipt)
        p.txs.append(tx)
        p.receipts.append(receipt)
        self._pending = p
        self._view_vm = None
        tx_hash = _hex(tx.hash)
        logs = tuple(
            RawLog(
                address=to_checksum_address(log.address),
                topics=tuple(t.to_bytes(32, "big") for t in log.topics),
                data=bytes(log.data),
                block_number=p.number,
                tx_hash=tx_hash,
                log_index=first_log + i,
            )
            for i, log in enumerate(receipt.logs)
        )
        for log in logs:
            key = log.address.lower()
            self._logs_by_address.setdefault(key, []).append(log)
            if log.topics:
                self._logs.setdefault((key, log.topics[0]), []).append(log)
        success = computation.is_success
        created = None
        if success and tx.to == b"":
            created = to_checksum_address(computation.msg.storage_address)
        return Applied(
            block_number=p.number,
            timestamp=p.timestamp,
            tx_hash=tx_hash,
            gas_used=int(receipt.gas_used - gas_before),
            success=success,
            reason=None if success else revert_reason(computation.error),
            created=created,
            logs=logs,
        )

    def seal(self) -> tuple[int, str, int, Any] | None:
        """Seal the pending block: ``(number, hash, transactions, tag)``, or ``None``."""
        p = self._pending
        if p is None:
            return None
        self._pending = None
        vm = p.vm
        filled = vm.set_block_transactions_and_withdrawals(
            vm.get_block(), p.header, p.txs, p.receipts
        )
        mix_hash = keccak(b"fedledger/prevrandao" + p.number.to_bytes(8, "big"))
        block = vm.finalize_block(vm.pack_block(filled, mix_hash=mix_hash)).block
        self.chain.chaindb.persist_block(block)
        self.chain.header = self.chain.create_header_from_parent(block.header)
        self._view_vm = None
        return p.number, _hex(block.hash), len(p.txs), p.tag

    # -- reads (including the pending block) ------------------------------------------------
    def _state_vm(self) -> VirtualMachineAPI:
        if self._pending is not None:
            return self._pending.vm
        if self._view_vm is None:
            self._view_vm = self.chain.get_vm()
        return self._view_vm

    def call(self, to: str, data: bytes) -> bytes:
        """Run a read-only call on the latest state, pending transactions included."""
        vm = self._state_vm()
        target = canonical(to)
        code = self._code.get(target)
        if code is None:
            code = vm.state.get_code(target)
            if code:
                self._code[target] = code
        snapshot = vm.state.snapshot()
        try:
            computation = vm.execute_bytecode(
                origin=_ZERO_ADDRESS,
                gas_price=0,
                gas=VIEW_GAS,
                to=target,
                sender=_ZERO_ADDRESS,
                value=0,
                data=data,
                code=code,
            )
        finally:
            vm.state.revert(snapshot)
        if computation.is_error:
            raise LedgerError(revert_reason(computation.error))
        return bytes(computation.output)

    def balance(self, address: str) -> int:
        """Ether balance (wei), pending transactions included."""
        return int(self._state_vm().state.get_balance(canonical(address)))

    def nonce(self, address: str) -> int:
        """Next nonce of an address, pending transactions included."""
        return int(self._state_vm().state.get_nonce(canonical(address)))

    def logs(self, address: str, topic0: bytes | None) -> list[RawLog]:
        """Every log of ``address`` (with first topic ``topic0``), pending ones included."""
        key = address.lower()
        if topic0 is None:
            return self._logs_by_address.get(key, [])
        return self._logs.get((key, topic0), [])

    def head(self) -> BlockHeaderAPI:
        """Header of the latest sealed block."""
        head: BlockHeaderAPI = self.chain.get_canonical_head()
        return head

    def block_hash(self, number: int) -> str:
        """Hash of sealed block ``number``."""
        return _hex(self.chain.get_canonical_block_hash(number))
