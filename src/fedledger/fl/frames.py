"""Length-prefixed frames between a parent process and a child over its stdin and stdout.

A frame is a 4-byte big-endian length, then that many bytes. The network process
(:mod:`fedledger.fl.network_process`) and the simulated enclave
(:mod:`fedledger.fl.enclave.process`) exchange JSON requests and replies in frames, with
binary payloads in a following frame whose parts the JSON sizes. Nothing is pickled.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import IO

import torch

from fedledger.errors import FedledgerError

__all__ = [
    "ChildProcess",
    "FrameConn",
    "error_reply",
    "join_parts",
    "read_frame",
    "split_parts",
    "write_frame",
]

_LEN = struct.Struct(">I")


def write_frame(stream: IO[bytes], data: bytes) -> None:
    stream.write(_LEN.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> bytes:
    head = stream.read(4)
    if len(head) < 4:
        raise EOFError("the other side closed the pipe")
    (size,) = _LEN.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the other side closed the pipe mid-message")
    return data


class FrameConn:
    """Frames in both directions over two byte streams."""

    def __init__(self, reader: IO[bytes], writer: IO[bytes]) -> None:
        self.reader, self.writer = reader, writer

    def recv_bytes(self) -> bytes:
        return read_frame(self.reader)

    def send_bytes(self, data: bytes) -> None:
        write_frame(self.writer, data)


def join_parts(parts: Sequence[bytes]) -> tuple[bytes, list[int]]:
    """Binary parts back to back, and their sizes (for the JSON header)."""
    return b"".join(parts), [len(p) for p in parts]


def split_parts(blob: bytes, sizes: Sequence[int]) -> list[bytes]:
    """Inverse of :func:`join_parts`; raises ``ValueError`` if the sizes do not add up."""
    if any(s < 0 for s in sizes) or sum(sizes) != len(blob):
        raise ValueError(f"parts of {sum(sizes)} bytes in a frame of {len(blob)}")
    out, at = [], 0
    for size in sizes:
        out.append(blob[at : at + size])
        at += size
    return out


def error_reply(exc: BaseException, fallback: str) -> bytes:
    """A child's one-line error for the parent: our own errors by kind, anything else as
    ``fallback`` with the exception's type named."""
    ours = isinstance(exc, FedledgerError)
    kind = type(exc).__name__ if ours else fallback
    message = str(exc) if ours else f"{type(exc).__name__}: {exc}"
    return json.dumps({"error": kind, "message": message}).encode()


class ChildProcess:
    """``python -m <module>`` with frames over its stdin and stdout, stopped however the
    parent ends (closed pipes, then a kill after 30 s; killed at once on garbage collection).

    Parameters
    ----------
    module
        The child's module.
    env
        Extra environment variables for the child.

    The child gets the parent's torch thread count (``OMP_NUM_THREADS``, unless ``env`` sets
    it): it computes while the parent waits, and with torch's default of one thread per core,
    runs side by side (an attack matrix) would put more threads than cores to work.
    """

    def __init__(self, module: str, env: Mapping[str, str] | None = None) -> None:
        threads = {"OMP_NUM_THREADS": str(torch.get_num_threads())}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **threads, **(env or {})},
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._conn = FrameConn(self._proc.stdout, self._proc.stdin)

    def _stop(self) -> None:
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                stream.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def kill(self) -> None:
        """Stop the child at once."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._stop()

    def __del__(self) -> None:  # a run that failed part-way still stops its child
        if getattr(self, "_proc", None) is not None and self._proc.poll() is None:
            self.kill()
