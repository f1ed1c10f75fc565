"""Length-prefixed frames between a parent process and a child over its stdin and stdout.

A frame is a 4-byte big-endian length, then that many bytes. The network process
(:mod:`fedledger.fl.network_process`) and the simulated enclave
(:mod:`fedledger.fl.enclave.process`) exchange JSON requests and replies in frames, with
binary payloads in a following frame whose parts the JSON sizes. Nothing is pickled.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import IO

__all__ = ["FrameConn", "join_parts", "read_frame", "split_parts", "write_frame"]

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
