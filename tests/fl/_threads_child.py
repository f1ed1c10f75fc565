"""A child for :mod:`tests.fl.test_frames`: answers every frame with its torch thread count."""

from __future__ import annotations

import sys

import torch

from fedledger.fl.frames import FrameConn

if __name__ == "__main__":
    conn = FrameConn(sys.stdin.buffer, sys.stdout.buffer)
    while True:
        try:
            conn.recv_bytes()
        except EOFError:
            break
        conn.send_bytes(str(torch.get_num_threads()).encode())
