"""Child processes spoken to in frames."""

from __future__ import annotations

import os

import torch

from fedledger.fl.frames import ChildProcess


def _threads(child: ChildProcess) -> int:
    child._conn.send_bytes(b"?")
    answer = int(child._conn.recv_bytes())
    child._stop()
    return answer


def test_a_child_computes_with_the_parents_torch_threads() -> None:
    """Two runs side by side, each with one thread, had enclave children of two threads each
    on two cores: the benign-shift probe inside them ran four to five times slower."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # what every run sets (train.threads)
        assert _threads(ChildProcess("tests.fl._threads_child")) == 1
        given = ChildProcess("tests.fl._threads_child", env={"OMP_NUM_THREADS": "2"})
        assert _threads(given) == min(2, os.cpu_count() or 1)  # env still wins
    finally:
        torch.set_num_threads(before)
