"""Run :class:`~fedledger.fl.network.Network` in a second OS process.

The child is ``python -m fedledger.fl.network_process``, reached only through its stdin and
stdout. Each message is a frame: a 4-byte big-endian length, then the bytes. The parent sends a
JSON request (``{"op": ..., ...}``), and for ``exchange`` a second frame with the round's
encoded envelopes back to back (the request gives their sizes). The child answers each
request in order with a JSON frame, ``{"ok": result}`` or ``{"error": kind, "message": ...}``.
Nothing is pickled.

Requests whose answer the parent does not need at once (opening a round, sealing a block,
checking a round's envelopes and committing) are sent ahead and their replies collected
later, so the child works while the parent trains or validates.
"""

from __future__ import annotations

import json
import signal
import sys
from collections import deque
from typing import Any

from fedledger.errors import CheckpointError, FedledgerError, LedgerError
from fedledger.fl.frames import ChildProcess, FrameConn, error_reply

__all__ = ["NetworkProcess"]

_ERRORS: dict[str, type[FedledgerError]] = {
    "LedgerError": LedgerError,
    "CheckpointError": CheckpointError,
}


def _serve(conn: FrameConn) -> None:  # pragma: no cover - runs in the child process
    from fedledger.fl.network import Network

    net: Network | None = None
    while True:
        try:
            request = json.loads(conn.recv_bytes())
        except EOFError:
            return
        op = request["op"]
        try:
            if op == "start":
                net, info = Network.start(request["spec"])
                result: Any = info
            elif net is None:
                raise LedgerError(f"network not started before {op!r}")
            elif op == "open_round":
                result = net.open_round(request["r"], request["base"], request["config"])
            elif op == "set_status":
                result = net.set_status(request["device"], request["active"], request["r"])
            elif op == "exchange":
                blob = conn.recv_bytes()
                inbox: dict[int, list[bytes]] = {}
                at = 0
                for g, sizes in request["sizes"].items():
                    inbox[int(g)] = []
                    for size in sizes:
                        inbox[int(g)].append(blob[at : at + size])
                        at += size
                rows = {
                    (bytes.fromhex(dev), bytes.fromhex(nonce)): int(row)
                    for dev, nonce, row in request["rows"]
                }
                result = net.exchange(request["r"], inbox, rows)
            elif op == "vote":
                result = net.vote(request["r"], request["ballots"])
            elif op == "settle":
                result = net.settle(request["r"], request["rewards"], request["penalties"])
            elif op == "seal":
                net.seal()
                result = None
            elif op == "close":
                net.close()
                conn.send_bytes(json.dumps({"ok": None}).encode())
                return
            else:
                raise LedgerError(f"unknown request {op!r}")
            conn.send_bytes(json.dumps({"ok": result}).encode())
        except Exception as exc:  # every failure goes back to the parent as one line
            conn.send_bytes(error_reply(exc, "LedgerError"))


class NetworkProcess(ChildProcess):
    """A :class:`~fedledger.fl.network.Network` in a child process, with the same methods.

    ``*_async`` methods send a request and return at once; the next call that needs an answer
    first collects the outstanding replies (and raises the first error among them).
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__("fedledger.fl.network_process")
        self._pending: deque[str] = deque()
        self.info: dict[str, Any] = self._call({"op": "start", "spec": spec})

    def _send(self, request: dict[str, Any], payload: bytes | None = None) -> None:
        self._conn.send_bytes(json.dumps(request).encode())
        if payload is not None:
            self._conn.send_bytes(payload)
        self._pending.append(request["op"])

    def _receive(self) -> Any:
        op = self._pending.popleft()
        try:
            reply = json.loads(self._conn.recv_bytes())
        except EOFError:
            raise LedgerError(
                f"the network process stopped during {op!r} (exit code {self._proc.poll()})"
            ) from None
        if "error" in reply:
            raise _ERRORS.get(reply["error"], LedgerError)(reply["message"])
        return reply["ok"]

    def _drain(self) -> list[Any]:
        return [self._receive() for _ in range(len(self._pending))]

    def _call(self, request: dict[str, Any], payload: bytes | None = None) -> Any:
        self._drain()
        self._send(request, payload)
        return self._receive()

    # ---- the Network interface ------------------------------------------------------------
    def open_round_async(self, r: int, base: str, config: str) -> None:
        self._send({"op": "open_round", "r": r, "base": base, "config": config})

    def seal_async(self) -> None:
        self._send({"op": "seal"})

    def collect(self) -> list[Any]:
        """Replies of every request sent ahead, in order."""
        return self._drain()

    def set_status(self, device: int, active: bool, r: int) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(
            {"op": "set_status", "device": device, "active": active, "r": r}
        )
        return result

    def exchange_async(
        self, r: int, inbox: dict[int, list[bytes]], rows: dict[tuple[bytes, bytes], int]
    ) -> None:
        sizes = {str(g): [len(x) for x in raws] for g, raws in inbox.items()}
        request = {
            "op": "exchange",
            "r": r,
            "sizes": sizes,
            "rows": [[dev.hex(), nonce.hex(), row] for (dev, nonce), row in rows.items()],
        }
        self._send(request, b"".join(x for raws in inbox.values() for x in raws))

    def vote(self, r: int, ballots: list[dict[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = self._call({"op": "vote", "r": r, "ballots": ballots})
        return result

    def settle(
        self, r: int, rewards: list[list[int]], penalties: list[list[int]]
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(
            {"op": "settle", "r": r, "rewards": rewards, "penalties": penalties}
        )
        return result

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._call({"op": "close"})
            finally:
                self._stop()


if __name__ == "__main__":  # pragma: no cover - the child process
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _serve(FrameConn(sys.stdin.buffer, sys.stdout.buffer))
