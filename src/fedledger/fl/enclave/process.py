"""The simulated enclave backend: :class:`~.service.EnclaveService` in its own OS process.

**Simulated: not hardware-protected.** The child (``python -m fedledger.fl.enclave.process``)
generates its keys itself and the host reaches it only through the requests of
:class:`~fedledger.security.enclave.backend.EnclaveBackend`, as frames over its stdin and stdout
(:mod:`fedledger.fl.frames`): a JSON request, then one frame with its binary parts back to back
(the request lists their sizes); the reply is a JSON frame (``{"ok": ...}`` or ``{"error":
kind, "message": ...}``) and a frame of binary parts. Nothing is pickled. The operating system
keeps the host out of the child's memory only as far as an ordinary process boundary does:
anyone with the same user id can read it, which is why this is a simulation.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from fedledger.errors import AttestationError, FedledgerError, SecureAggregationError
from fedledger.fl.frames import ChildProcess, FrameConn, error_reply, join_parts, split_parts
from fedledger.security.enclave.backend import AggregateReply, DecryptReply

__all__ = ["EnclaveProcess"]

_ERRORS: dict[str, type[FedledgerError]] = {
    "AttestationError": AttestationError,
    "SecureAggregationError": SecureAggregationError,
}


def _serve(conn: FrameConn) -> None:  # pragma: no cover - runs in the child process
    from fedledger.fl.enclave.service import EnclaveService

    service: EnclaveService | None = None
    while True:
        try:
            request = json.loads(conn.recv_bytes())
            parts = split_parts(conn.recv_bytes(), request.get("sizes", []))
        except EOFError:
            return
        op = request["op"]
        out: list[bytes] = []
        try:
            if op == "start":
                service = EnclaveService(request["config"], int(request["platform_seed"]))
                result: Any = {"measurement": service.measurement.hex()}
            elif service is None:
                raise SecureAggregationError(f"enclave not started before {op!r}")
            elif op == "attest":
                out = service.attest(parts)
                result = None
            elif op == "public":
                out = [service.public_material()]
                result = None
            elif op == "aggregate":
                reply = service.aggregate(
                    int(request["round"]),
                    parts[0],
                    parts[1],
                    parts[3:],
                    request["n_samples"],
                    parts[2],
                )
                out = [reply.params, reply.state, reply.transcript, reply.signature]
                result = None
            elif op == "decrypt":
                digests = [bytes.fromhex(d) for d in request["digests"]]
                dec = service.decrypt_sum(
                    int(request["round"]),
                    parts[0],
                    int(request["length"]),
                    list(zip(digests, request["n_samples"], strict=True)),
                )
                out = [dec.values, dec.transcript, dec.signature]
                result = None
            elif op == "close":
                conn.send_bytes(json.dumps({"ok": None}).encode())
                conn.send_bytes(b"")
                return
            else:
                raise SecureAggregationError(f"unknown request {op!r}")
            blob, sizes = join_parts(out)
            conn.send_bytes(json.dumps({"ok": result, "sizes": sizes}).encode())
            conn.send_bytes(blob)
        except Exception as exc:  # every failure goes back to the host as one line
            conn.send_bytes(error_reply(exc, "SecureAggregationError"))
            conn.send_bytes(b"")


class EnclaveProcess(ChildProcess):
    """The host's handle on a simulated enclave running in a child process.

    Parameters
    ----------
    config
        :func:`~fedledger.fl.enclave.service.enclave_config`'s dictionary.
    platform_seed
        Seed of the simulated platform key.
    env
        Extra environment variables for the child (tests run a modified copy of the code
        through ``PYTHONPATH``).
    """

    def __init__(
        self,
        config: dict[str, Any],
        platform_seed: int,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__("fedledger.fl.enclave.process", env)
        info, _ = self._call({"op": "start", "config": config, "platform_seed": platform_seed})
        self._measurement = bytes.fromhex(info["measurement"])

    @property
    def measurement(self) -> bytes:
        return self._measurement

    def _call(
        self, request: dict[str, Any], parts: Sequence[bytes] = ()
    ) -> tuple[Any, list[bytes]]:
        blob, sizes = join_parts(parts)
        try:
            self._conn.send_bytes(json.dumps({**request, "sizes": sizes}).encode())
            self._conn.send_bytes(blob)
            reply = json.loads(self._conn.recv_bytes())
            data = self._conn.recv_bytes()
        except (EOFError, BrokenPipeError):
            raise SecureAggregationError(
                f"the enclave process stopped during {request['op']!r} "
                f"(exit code {self._proc.poll()})"
            ) from None
        if "error" in reply:
            raise _ERRORS.get(reply["error"], SecureAggregationError)(reply["message"])
        return reply["ok"], split_parts(data, reply.get("sizes", []))

    def attest(self, nonces: Sequence[bytes]) -> list[bytes]:
        return self._call({"op": "attest"}, nonces)[1]

    def public_material(self) -> bytes:
        return self._call({"op": "public"})[1][0]

    def aggregate(
        self,
        round_number: int,
        base: bytes,
        state: bytes,
        payloads: Sequence[bytes],
        n_samples: Sequence[int],
        context: bytes = b"",
    ) -> AggregateReply:
        _, out = self._call(
            {"op": "aggregate", "round": round_number, "n_samples": [int(n) for n in n_samples]},
            [base, state, context, *payloads],
        )
        return AggregateReply(*out)

    def decrypt_sum(
        self,
        round_number: int,
        summed: bytes,
        length: int,
        inputs: Sequence[tuple[bytes, int]],
    ) -> DecryptReply:
        _, out = self._call(
            {
                "op": "decrypt",
                "round": round_number,
                "length": length,
                "digests": [d.hex() for d, _ in inputs],
                "n_samples": [int(n) for _, n in inputs],
            },
            [summed],
        )
        return DecryptReply(*out)

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._call({"op": "close"})
            except SecureAggregationError:
                pass
            finally:
                self._stop()


if __name__ == "__main__":  # pragma: no cover - the child process
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the host's to handle
    _serve(FrameConn(sys.stdin.buffer, sys.stdout.buffer))
