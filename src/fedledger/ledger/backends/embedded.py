"""The default ledger: an in-process, deterministic EVM (py-evm behind eth-tester).

By default each transaction is mined in its own block. With ``blocks="round"`` the transactions
of a round share blocks (a block is sealed when the round tag changes, when the next
transaction's gas limit no longer fits, or on :meth:`~EmbeddedChain.seal`), which makes a round
about a third cheaper. Either way, block timestamps and ``prevrandao`` come from the block
number, never from the clock, and the accounts are funded in the genesis state, so the same
transactions give the same block hashes on every machine. With a ``log_path`` every mined
transaction is appended to a JSON-lines log that :meth:`EmbeddedChain.replay` re-executes and
checks hash by hash.

The hot path talks to py-evm directly (no JSON-RPC emulation, no web3 formatters);
:attr:`EmbeddedChain.w3` offers a web3 view over the same chain for ad-hoc, read-only use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth.abc import SignedTransactionAPI
from eth.vm.forks.shanghai.transactions import ShanghaiTransactionBuilder
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester.backends.pyevm.main import get_default_genesis_params
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from fedledger.errors import LedgerError
from fedledger.ledger.backends.base import ChainBackend, Mined, Receipt, SignedTx
from fedledger.ledger.backends.miner import Miner, canonical
from fedledger.ledger.backends.txlog import (
    BlockRecord,
    LogLine,
    TxLogWriter,
    TxRecord,
    genesis_header,
    parse_genesis,
    read_lines,
)
from fedledger.ledger.contracts.abi import RawLog

if TYPE_CHECKING:
    from web3 import Web3

__all__ = ["BLOCK_MODES", "EmbeddedChain"]

BLOCK_MODES = ("transaction", "round")
GENESIS_TIMESTAMP = 1_700_000_000
BLOCK_TIME = 12
GENESIS_BALANCE = 10**24  # one million ether per genesis account
FUND_AMOUNT = 10**21  # what fund() gives an account missing from the genesis
MAX_FEE_PER_GAS = 100 * 10**9
FAUCET_KEY = keccak(b"fedledger/embedded-chain/faucet/v1")
_BUILDER = ShanghaiTransactionBuilder


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: "0x" + v.hex() if isinstance(v, bytes) else v for k, v in sorted(params.items())}


class EmbeddedChain(ChainBackend):
    """In-process EVM chain, deterministic and optionally persisted as a transaction log.

    Parameters
    ----------
    accounts
        Addresses funded in the genesis state (the authority, gateways and validators).
        Addresses funded later through :meth:`fund` get a logged transfer from a built-in
        faucet instead.
    log_path
        If given, a new transaction log is started there (it must not hold one already; use
        :meth:`replay` to continue an existing log).
    blocks
        ``"transaction"``: one block per transaction, sealed before :meth:`send` returns.
        ``"round"``: transactions of the same round share blocks; receipts carry an empty
        ``block_hash`` until the block is sealed, and the log gets one ``block`` line per
        sealed block. Call :meth:`seal` (or ``LedgerClient.seal``) when a round ends.
    """

    name = "embedded"
    unsealed: int = 0

    def __init__(
        self,
        accounts: Iterable[str] = (),
        *,
        log_path: str | Path | None = None,
        blocks: str = "transaction",
    ) -> None:
        if blocks not in BLOCK_MODES:
            raise LedgerError(f"blocks must be one of {BLOCK_MODES}, got {blocks!r}")
        faucet = Account.from_key(FAUCET_KEY)
        alloc = {faucet.address.lower(): GENESIS_BALANCE}
        alloc.update({a.lower(): GENESIS_BALANCE for a in accounts})
        genesis = genesis_header(
            "embedded",
            0,
            vm="shanghai",
            blocks=blocks,
            block_time=BLOCK_TIME,
            params=_jsonable(get_default_genesis_params({"timestamp": GENESIS_TIMESTAMP})),
            alloc={a: str(b) for a, b in sorted(alloc.items())},
        )
        self._setup(genesis)
        self.unsealed = 0
        if log_path is not None:
            self._writer = TxLogWriter.create(Path(log_path), self._genesis)

    def _setup(self, genesis: dict[str, Any]) -> None:
        super().__init__()
        params = {
            k: bytes.fromhex(v[2:]) if isinstance(v, str) else v
            for k, v in genesis["params"].items()
        }
        state = {
            canonical(a): {"balance": int(b), "nonce": 0, "code": b"", "storage": {}}
            for a, b in genesis["alloc"].items()
        }
        blocks = genesis.get("blocks", "transaction")
        if blocks not in BLOCK_MODES:
            raise LedgerError(f"unknown block mode {blocks!r}")
        self.blocks = str(blocks)
        self._miner = Miner(params, state, int(genesis["block_time"]))
        self.chain_id = self._miner.chain_id
        genesis_hash = self._miner.block_hash(0)
        if genesis.get("genesis_hash", genesis_hash) != genesis_hash:
            raise LedgerError(
                f"genesis hash differs: log has {genesis['genesis_hash']}, "
                f"the genesis parameters give {genesis_hash}"
            )
        self._genesis = {**genesis, "chain_id": self.chain_id, "genesis_hash": genesis_hash}
        self._faucet: LocalAccount = Account.from_key(FAUCET_KEY)
        self._funded = {canonical(a) for a in genesis["alloc"]}
        self._w3: Web3 | None = None

    # -- replay ----------------------------------------------------------------------------
    @classmethod
    def replay(
        cls, log_path: str | Path, upto_round: int | None = None, *, readonly: bool = False
    ) -> EmbeddedChain:
        """Rebuild a chain from its transaction log, checking every record, and keep logging.

        Parameters
        ----------
        log_path
            A log written by an :class:`EmbeddedChain` (its block mode is read from it).
        upto_round
            If given, stop before the first transaction tagged with a later round and cut the
            log file there (a torn last line from a crash is cut too); the chain then continues
            from that point, appending to the same file.
        readonly
            Check the log without ever writing to it (an audit): nothing is appended or cut,
            and :attr:`unsealed` tells how many trailing transactions no block line sealed.

        Raises
        ------
        LedgerError
            Naming the first line whose transaction, hashes, gas or status do not reproduce
            (an edited, dropped, reordered or truncated line).
        """
        path = Path(log_path)
        if not path.exists():
            raise LedgerError(f"{path}: no such ledger log")
        lines = read_lines(path)
        first = next(lines, None)
        if first is None or not first.complete:
            raise LedgerError(f"{path}:1: the log has no complete genesis line")
        genesis = parse_genesis(path, first)
        if genesis.get("backend") != "embedded":
            raise LedgerError(f"{path}:1: log of a {genesis.get('backend')!r} chain, not embedded")
        chain = cls.__new__(cls)
        try:
            chain._setup(genesis)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LedgerError(f"{path}:1: genesis record is invalid ({exc!r})") from None
        except LedgerError as exc:
            raise LedgerError(f"{path}:1: {exc}") from None
        if genesis.get("chain_id") != chain.chain_id:
            raise LedgerError(
                f"{path}:1: chain id {genesis.get('chain_id')} differs from the embedded "
                f"chain's {chain.chain_id}"
            )
        cut: int | None = None
        for line in lines:
            if upto_round is not None and not line.complete:
                cut = line.offset  # torn write of the round in progress
                break
            record = _parse_line(path, line)
            if upto_round is not None and record.round > upto_round:
                cut = line.offset
                break
            where = f"{path}:{line.number}"
            if isinstance(record, BlockRecord):
                chain._replay_block(where, record)
            else:
                chain._replay_tx(where, record)
        pending = chain._miner.pending
        chain.unsealed = pending[2] if pending is not None else 0
        if not readonly:
            chain._writer = TxLogWriter.append_to(path, truncate_at=cut)
        return chain

    def _replay_tx(self, where: str, record: TxRecord) -> None:
        pending = self._miner.pending
        expected = pending[0] if pending is not None else self._miner.next_block_number()
        if record.block != expected:
            raise LedgerError(
                f"{where}: records block {record.block} but the chain is at block {expected} "
                "(a line was dropped, duplicated or reordered)"
            )
        if pending is not None and pending[1] != record.round:
            raise LedgerError(f"{where}: round {record.round} in a block of round {pending[1]}")
        if record.raw is None:
            raise LedgerError(f"{where}: no raw transaction to re-execute")
        try:
            tx = _BUILDER.decode(bytes.fromhex(record.raw.removeprefix("0x")))
            tx_hash = "0x" + tx.hash.hex()
        except Exception as exc:  # any malformed byte string
            raise LedgerError(f"{where}: raw transaction does not decode ({exc})") from None
        if tx_hash != record.tx_hash:
            raise LedgerError(
                f"{where}: tx hash differs: log has {record.tx_hash}, "
                f"the raw transaction hashes to {tx_hash}"
            )
        if self.blocks == "round" and record.block_hash is not None:
            raise LedgerError(f"{where}: a transaction line of a shared block has a block hash")
        try:
            mined = self._mine(
                tx, round=record.round, label=record.label, seal=self.blocks == "transaction"
            )
        except LedgerError as exc:
            raise LedgerError(f"{where}: {exc}") from None
        r = mined.receipt
        for name, logged, replayed in (
            ("timestamp", record.timestamp, mined.timestamp),
            ("status", record.status, r.status),
            ("gas used", record.gas_used, r.gas_used),
            ("block hash", record.block_hash, r.block_hash or None),
            ("contract address", record.contract, r.contract_address),
        ):
            if logged != replayed:
                raise LedgerError(
                    f"{where}: {name} differs: log has {logged}, replay gives {replayed}"
                )
        self._book(r)

    def _replay_block(self, where: str, record: BlockRecord) -> None:
        pending = self._miner.pending
        if self.blocks != "round" or pending is None or pending[0] != record.block:
            raise LedgerError(f"{where}: block line for block {record.block} out of place")
        if (pending[1], pending[2]) != (record.round, record.transactions):
            raise LedgerError(
                f"{where}: block {record.block} records {record.transactions} transactions of "
                f"round {record.round}, replay has {pending[2]} of round {pending[1]}"
            )
        sealed = self._seal_pending()
        if sealed != record.block_hash:
            raise LedgerError(
                f"{where}: block hash differs: log has {record.block_hash}, replay gives {sealed}"
            )

    # -- ChainBackend ----------------------------------------------------------------------
    def fund(self, addresses: Sequence[str], *, round: int = 0) -> None:
        """Fund addresses missing from the genesis state with a logged faucet transfer."""
        for address in addresses:
            key = canonical(address)
            if key in self._funded:
                continue
            if self.balance(address) < FUND_AMOUNT // 10:
                self._transact(
                    self._faucet,
                    to=to_checksum_address(address),
                    data=b"",
                    gas=21_000,
                    value=FUND_AMOUNT,
                    round=round,
                    label="fund",
                    what="fund",
                )
            self._funded.add(key)

    def seal(self) -> None:
        """Seal the block being filled (``blocks="round"``) and log it; a no-op otherwise."""
        sealed = self._miner.seal()
        if sealed is not None and self._writer is not None:
            number, block_hash, count, round = sealed
            self._writer.append(BlockRecord(number, block_hash, count, int(round)))

    def _seal_pending(self) -> str:
        sealed = self._miner.seal()
        assert sealed is not None
        return sealed[1]

    def call(self, to: str, data: bytes) -> bytes:
        """Execute a read-only call on the latest state, unsealed transactions included."""
        return self._miner.call(to, data)

    def get_logs(
        self,
        address: str,
        topic0: bytes | None = None,
        topic1: bytes | None = None,
        from_block: int = 0,
    ) -> list[RawLog]:
        """Logs of ``address`` from an in-memory index kept as transactions are applied."""
        return [
            log
            for log in self._miner.logs(address, topic0)
            if log.block_number >= from_block
            and (topic1 is None or (len(log.topics) > 1 and log.topics[1] == topic1))
        ]

    def block_number(self) -> int:
        """Number of the latest block (a block being filled is sealed first)."""
        self.seal()
        return int(self._miner.head().block_number)

    def latest_block_hash(self) -> str:
        """Hash of the latest block (a block being filled is sealed first)."""
        self.seal()
        return "0x" + self._miner.head().hash.hex()

    def block_hash(self, number: int) -> str:
        """Hash of block ``number`` (0 is the genesis)."""
        latest = self.block_number()
        if not 0 <= number <= latest:
            raise LedgerError(f"no block {number}; the latest is {latest}")
        return self._miner.block_hash(number)

    def state_root(self) -> str:
        """State root of the latest block (a block being filled is sealed first)."""
        self.seal()
        return "0x" + self._miner.head().state_root.hex()

    def balance(self, address: str) -> int:
        """Ether balance (wei) on the latest state, unsealed transactions included."""
        return self._miner.balance(address)

    @property
    def genesis(self) -> dict[str, Any]:
        """The genesis record (first log line): parameters, allocations, chain id, hash."""
        return dict(self._genesis)

    @property
    def w3(self) -> Web3:
        """A web3 view of this chain through ``EthereumTesterProvider``, for reading only.

        It sees sealed blocks only; transactions sent through it would bypass the
        deterministic miner and the log.
        """
        if self._w3 is None:
            from eth_tester import EthereumTester
            from web3 import EthereumTesterProvider, Web3

            w3 = Web3(EthereumTesterProvider(EthereumTester(self._miner.backend)))
            w3.middleware_onion.clear()
            self._w3 = w3
        return self._w3

    def _fetch_nonce(self, address: str) -> int:
        return self._miner.nonce(address)

    def _fees(self, round: int) -> tuple[int, int]:
        return MAX_FEE_PER_GAS, 0

    def _execute(self, tx: SignedTx, *, round: int, label: str) -> Mined:
        pending = self._miner.pending
        if pending is not None and (pending[1] != round or not self._miner.fits(tx.evm)):
            self.seal()
        return self._mine(tx.evm, round=round, label=label, seal=self.blocks == "transaction")

    def _mine(self, tx: SignedTransactionAPI, *, round: int, label: str, seal: bool) -> Mined:
        applied = self._miner.apply(tx, round)
        receipt = Receipt(
            tx_hash=applied.tx_hash,
            block_number=applied.block_number,
            block_hash=self._seal_pending() if seal else "",
            gas_used=applied.gas_used,
            status=1 if applied.success else 0,
            round=round,
            label=label,
            contract_address=applied.created,
            logs=applied.logs,
        )
        return Mined(receipt=receipt, timestamp=applied.timestamp, revert_reason=applied.reason)


def _parse_line(path: Path, line: LogLine) -> TxRecord | BlockRecord:
    where = f"{path}:{line.number}"
    if not line.complete:
        raise LedgerError(f"{where}: truncated line (no newline at the end of the log)")
    try:
        obj = json.loads(line.text)
        if isinstance(obj, dict) and obj.get("kind") == "block":
            return BlockRecord.from_json(obj)
        return TxRecord.from_json(obj)
    except json.JSONDecodeError as exc:
        raise LedgerError(f"{where}: not valid JSON ({exc.msg})") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise LedgerError(f"{where}: not a transaction or block record ({exc!r})") from None
