"""A ledger on any Ethereum JSON-RPC node (Hardhat, anvil, ganache, geth --dev, a testnet).

Transactions are signed locally and sent raw; receipts are polled. The derived accounts are
funded from the private key in ``FEDLEDGER_LEDGER_KEY`` if it is set, else from the node's
first unlocked account (``eth_accounts[0]``, as dev nodes provide). JSON-RPC is spoken
through web3's ``HTTPProvider`` without web3's formatters, which keeps a transaction to two
round trips.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from web3 import HTTPProvider
from web3.types import RPCEndpoint

from fedledger.errors import LedgerError
from fedledger.ledger.backends.base import ChainBackend, Mined, Receipt, SignedTx
from fedledger.ledger.backends.txlog import (
    TxLogWriter,
    TxRecord,
    genesis_header,
    parse_genesis,
    read_lines,
)
from fedledger.ledger.contracts.abi import RawLog

__all__ = ["KEY_ENV", "RpcChain"]

KEY_ENV = "FEDLEDGER_LEDGER_KEY"
FUND_AMOUNT = 10 * 10**18
DEFAULT_TIP = 10**9
_ERROR_SELECTOR = "08c379a0"
_REASON_PATTERNS = (
    re.compile(r"reverted with reason string '(.*)'", re.S),
    re.compile(r"execution reverted: (.*)", re.S),
    re.compile(r"revert(?:ed)?:? (.+)", re.S),
)


class _RpcError(Exception):
    def __init__(self, method: str, error: dict[str, Any]) -> None:
        self.method = method
        self.code = error.get("code")
        self.message = str(error.get("message", error))
        self.data = error.get("data")
        super().__init__(f"{method}: {self.message}")

    def reason(self) -> str:
        """The revert reason carried by this error, as well as it can be recovered."""
        data = self.data.get("data") if isinstance(self.data, dict) else self.data
        if isinstance(data, str) and data.removeprefix("0x").startswith(_ERROR_SELECTOR):
            try:
                return str(abi_decode(("string",), bytes.fromhex(data.removeprefix("0x")[8:]))[0])
            except Exception:  # malformed payload: fall back to the message
                pass
        for pattern in _REASON_PATTERNS:
            match = pattern.search(self.message)
            if match:
                return match.group(1).strip()
        return self.message


def _error_dict(error: Any) -> dict[str, Any]:
    return dict(error) if isinstance(error, dict) else {"message": str(error)}


def _int(value: str) -> int:
    return int(value, 16)


class RpcChain(ChainBackend):
    """A chain reached over HTTP JSON-RPC.

    Parameters
    ----------
    url
        The node's HTTP endpoint, e.g. ``http://127.0.0.1:8545``.
    log_path
        Transaction log to append to; an existing log of the same chain is continued.
    funding_key
        Private key (hex) of the account that funds ours; defaults to ``$FEDLEDGER_LEDGER_KEY``,
        then to the node's first unlocked account.
    fund_amount
        Wei given to each account found with less than half of it.
    receipt_timeout
        Seconds to wait for a transaction to be mined.
    """

    name = "rpc"

    def __init__(
        self,
        url: str,
        *,
        log_path: str | Path | None = None,
        funding_key: str | None = None,
        fund_amount: int = FUND_AMOUNT,
        receipt_timeout: float = 120.0,
        request_timeout: float = 30.0,
    ) -> None:
        super().__init__()
        self.url = url
        self._provider = HTTPProvider(
            url, request_kwargs={"timeout": request_timeout}, exception_retry_configuration=None
        )
        self.chain_id = _int(self._rpc("eth_chainId", []))
        key = funding_key if funding_key is not None else os.environ.get(KEY_ENV)
        self._funder: LocalAccount | None = None
        if key:
            try:
                self._funder = Account.from_key(key)
            except Exception:
                raise LedgerError(f"{KEY_ENV} does not hold a valid private key") from None
        self._fund_amount = fund_amount
        self._receipt_timeout = receipt_timeout
        self._funded: set[str] = set()
        self._fee_round: int | None = None
        self._fee = (0, 0)
        self._tip: int | None = None
        if log_path is not None:
            self._open_log(Path(log_path))

    # -- JSON-RPC --------------------------------------------------------------------------
    def _rpc(self, method: str, params: list[Any]) -> Any:
        try:
            response = self._provider.make_request(RPCEndpoint(method), params)
        except Exception as exc:  # requests' connection errors, timeouts, bad JSON
            raise LedgerError(
                f"cannot reach an Ethereum node at {self.url} ({type(exc).__name__})"
            ) from None
        if "error" in response:
            raise _RpcError(method, _error_dict(response["error"]))
        return response.get("result")

    def _batch(self, calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        """Send several requests in one HTTP round trip; responses in request order."""
        try:
            responses = self._provider.make_batch_request(
                [(RPCEndpoint(method), params) for method, params in calls]
            )
        except Exception as exc:  # requests' connection errors, timeouts, bad JSON
            raise LedgerError(
                f"cannot reach an Ethereum node at {self.url} ({type(exc).__name__})"
            ) from None
        if not isinstance(responses, list):  # the whole batch was refused
            error = _error_dict(dict(responses).get("error", responses))
            raise LedgerError(f"the node refused a batch request: {error.get('message')}")
        return [dict(r) for r in responses]

    def _log_file_genesis(self) -> dict[str, Any]:
        block0 = self._rpc("eth_getBlockByNumber", ["0x0", False])
        return genesis_header("rpc", self.chain_id, genesis_hash=block0["hash"])

    def _open_log(self, path: Path) -> None:
        genesis = self._log_file_genesis()
        if not path.exists() or path.stat().st_size == 0:
            self._writer = TxLogWriter.create(path, genesis)
            return
        lines = read_lines(path)
        first = next(lines)
        logged = parse_genesis(path, first)
        if (logged.get("chain_id"), logged.get("genesis_hash")) != (
            genesis["chain_id"],
            genesis["genesis_hash"],
        ):
            raise LedgerError(f"{path} is the log of another chain than the node at {self.url}")
        for line in lines:
            try:
                record = TxRecord.from_json(json.loads(line.text))
            except (ValueError, KeyError, TypeError) as exc:
                raise LedgerError(
                    f"{path}:{line.number}: not a transaction record ({exc})"
                ) from None
            self._book(_receipt_of_record(record))
        self._writer = TxLogWriter.append_to(path)

    # -- ChainBackend ----------------------------------------------------------------------
    def fund(self, addresses: Sequence[str], *, round: int = 0) -> None:
        """Top up each address holding less than half of ``fund_amount`` (logged as "fund")."""
        for address in addresses:
            address = to_checksum_address(address)
            if address in self._funded:
                continue
            if self.balance(address) < self._fund_amount // 2:
                if self._funder is not None:
                    self._transact(
                        self._funder,
                        to=address,
                        data=b"",
                        gas=21_000,
                        value=self._fund_amount,
                        round=round,
                        label="fund",
                        what="fund",
                    )
                else:
                    self._fund_from_node(address, round)
            self._funded.add(address)

    def _fund_from_node(self, address: str, round: int) -> None:
        accounts = self._rpc("eth_accounts", [])
        if not accounts:
            raise LedgerError(
                f"no funded account: the node at {self.url} has no unlocked account and "
                f"{KEY_ENV} is not set"
            )
        source = to_checksum_address(accounts[0])
        if self.balance(source) < self._fund_amount * 2:
            raise LedgerError(f"no funded account: {source} holds too little ether to fund ours")
        try:
            tx_hash = self._rpc(
                "eth_sendTransaction",
                [
                    {
                        "from": source,
                        "to": address,
                        "value": hex(self._fund_amount),
                        "gas": hex(21_000),
                    }
                ],
            )
        except _RpcError as err:
            raise LedgerError(
                f"fund: the node refused to send from {source}: {err.message}"
            ) from None
        mined = self._mined(self._wait_receipt(tx_hash), round=round, label="fund")
        self._book(mined.receipt)
        if self._writer is not None:
            self._writer.append(self._record(None, mined))

    def call(self, to: str, data: bytes) -> bytes:
        """``eth_call`` on the latest block."""
        try:
            out = self._rpc("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])
        except _RpcError as err:
            raise LedgerError(err.reason()) from None
        return bytes.fromhex(str(out).removeprefix("0x"))

    def get_logs(
        self,
        address: str,
        topic0: bytes | None = None,
        topic1: bytes | None = None,
        from_block: int = 0,
    ) -> list[RawLog]:
        """``eth_getLogs`` for one address and optional first topics."""
        topics: list[str | None] = []
        if topic0 is not None or topic1 is not None:
            topics = ["0x" + topic0.hex() if topic0 is not None else None]
            if topic1 is not None:
                topics.append("0x" + topic1.hex())
        query = {
            "address": address,
            "fromBlock": hex(from_block),
            "toBlock": "latest",
            "topics": topics,
        }
        return [_raw_log(log) for log in self._rpc("eth_getLogs", [query])]

    def block_number(self) -> int:
        """``eth_blockNumber``."""
        return _int(self._rpc("eth_blockNumber", []))

    def latest_block_hash(self) -> str:
        """Hash of the node's latest block."""
        return str(self._rpc("eth_getBlockByNumber", ["latest", False])["hash"])

    def balance(self, address: str) -> int:
        """``eth_getBalance`` on the latest block."""
        return _int(self._rpc("eth_getBalance", [address, "latest"]))

    def verify_against_node(self, log_path: str | Path | None = None) -> int:
        """Re-fetch every logged transaction's receipt and block from the node and compare.

        ``log_path`` defaults to this chain's own log (an auditor passes a run's log).
        Returns the number of records checked; raises ``LedgerError`` naming the first line
        whose block hash, gas or status the node does not confirm.
        """
        if log_path is not None:
            path = Path(log_path)
        elif self._writer is not None:
            path = self._writer.path
        else:
            raise LedgerError("verify_against_node: this chain keeps no log")
        checked = 0
        for line in list(read_lines(path))[1:]:
            record = TxRecord.from_json(json.loads(line.text))
            receipt = self._rpc("eth_getTransactionReceipt", [record.tx_hash])
            block = self._rpc("eth_getBlockByNumber", [hex(record.block), False])
            found = {
                "block hash": (record.block_hash, block["hash"] if block else None),
                "receipt block": (record.block_hash, receipt["blockHash"] if receipt else None),
                "gas used": (record.gas_used, _int(receipt["gasUsed"]) if receipt else None),
                "status": (record.status, _int(receipt["status"]) if receipt else None),
            }
            for name, (logged, node) in found.items():
                if logged != node:
                    raise LedgerError(
                        f"{path}:{line.number}: {name}: log has {logged}, node has {node}"
                    )
            checked += 1
        return checked

    def _fetch_nonce(self, address: str) -> int:
        return _int(self._rpc("eth_getTransactionCount", [address, "pending"]))

    def _fees(self, round: int) -> tuple[int, int]:
        if round != self._fee_round:
            block = self._rpc("eth_getBlockByNumber", ["latest", False])
            base = _int(block.get("baseFeePerGas", "0x0"))
            if self._tip is None:
                try:
                    self._tip = _int(self._rpc("eth_maxPriorityFeePerGas", []))
                except _RpcError:
                    self._tip = DEFAULT_TIP
            self._fee = (2 * base + self._tip, self._tip)
            self._fee_round = round
        return self._fee

    def _execute(self, tx: SignedTx, *, round: int, label: str) -> Mined:
        tx_hash = "0x" + tx.tx_hash.hex()
        sent_error: _RpcError | None = None
        # One HTTP round trip: a node that mines on arrival (Hardhat, anvil) often has the
        # receipt when it answers the second request of the batch; if not, it is polled.
        sent, receipt = self._batch(
            [
                ("eth_sendRawTransaction", ["0x" + tx.raw.hex()]),
                ("eth_getTransactionReceipt", [tx_hash]),
            ]
        )
        if "error" in sent:
            # Dev nodes that automine answer a reverting transaction with an error yet mine
            # it; anything else with an error was refused.
            sent_error = _RpcError("eth_sendRawTransaction", _error_dict(sent["error"]))
            if receipt.get("result") is None:
                receipt = {"result": self._rpc("eth_getTransactionReceipt", [tx_hash])}
            if receipt["result"] is None:
                raise LedgerError(f"the node refused the transaction: {sent_error.message}")
        found = receipt.get("result")
        mined = self._mined(found or self._wait_receipt(tx_hash), round=round, label=label)
        if mined.receipt.status == 1:
            return mined
        reason = sent_error.reason() if sent_error is not None else self._replay_reason(tx, mined)
        return Mined(receipt=mined.receipt, timestamp=None, revert_reason=reason)

    def _replay_reason(self, tx: SignedTx, mined: Mined) -> str:
        """Recover a revert reason by re-running the call on the parent block."""
        evm = tx.evm
        call = {
            "from": tx.sender,
            "to": to_checksum_address(evm.to) if evm.to else None,
            "data": "0x" + bytes(evm.data).hex(),
            "gas": hex(evm.gas),
        }
        try:
            self._rpc("eth_call", [call, hex(mined.receipt.block_number - 1)])
        except _RpcError as err:
            return err.reason()
        return "reverted"

    def _wait_receipt(self, tx_hash: str) -> dict[str, Any]:
        deadline = time.monotonic() + self._receipt_timeout
        delay = 0.01
        while True:
            receipt = self._rpc("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                return dict(receipt)
            if time.monotonic() > deadline:
                raise LedgerError(f"no receipt for {tx_hash} after {self._receipt_timeout:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    @staticmethod
    def _mined(receipt: dict[str, Any], *, round: int, label: str) -> Mined:
        created = receipt.get("contractAddress")
        return Mined(
            receipt=Receipt(
                tx_hash=receipt["transactionHash"],
                block_number=_int(receipt["blockNumber"]),
                block_hash=receipt["blockHash"],
                gas_used=_int(receipt["gasUsed"]),
                status=_int(receipt["status"]),
                round=round,
                label=label,
                contract_address=to_checksum_address(created) if created else None,
                logs=tuple(_raw_log(log) for log in receipt["logs"]),
            ),
            timestamp=None,
            revert_reason=None,
        )


def _raw_log(log: dict[str, Any]) -> RawLog:
    return RawLog(
        address=to_checksum_address(log["address"]),
        topics=tuple(bytes.fromhex(t[2:]) for t in log["topics"]),
        data=bytes.fromhex(log["data"][2:]),
        block_number=_int(log["blockNumber"]),
        tx_hash=log["transactionHash"],
        log_index=_int(log["logIndex"]),
    )


def _receipt_of_record(record: TxRecord) -> Receipt:
    return Receipt(
        tx_hash=record.tx_hash,
        block_number=record.block,
        block_hash=record.block_hash or "",
        gas_used=record.gas_used,
        status=record.status,
        round=record.round,
        label=record.label,
        contract_address=record.contract,
    )
