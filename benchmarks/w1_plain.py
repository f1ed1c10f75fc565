"""W1 as a plain sequential PyTorch loop: the baseline every framework is compared against.

W1 (see benchmarks/README.md): NSL-KDD, 100 clients, MLP 122-64-32-5 with PyTorch's default
init after ``torch.manual_seed(0)``; each round every client trains 1 local epoch (batch 32 over
a per-client random permutation, last batch kept, SGD lr 0.05, no momentum, mean cross-entropy),
the server averages the states weighted by sample count (FedAvg) and evaluates on the test split.

The batch order is chosen by ``--shuffle`` (see :func:`batch_order`):

- ``fedledger`` (default): exactly the batches fedledger's engine draws, a new permutation of
  client ``c``'s rows every round from ``numpy.random.default_rng([seed, round, 1, c])``. With it
  the plain loop, Flower and fedledger compute the same math, so their accuracies agree to float
  rounding, and the benchmark compares speed alone.
- ``reference``: a ``torch.Generator`` seeded with the client id, the same permutation every
  round: the scheme of the reference implementation behind the numbers in shared/bench/README.md
  (it reproduces 0.6527 after 2 rounds and 0.6886 after 10 exactly).

Either way the order depends only on (seed, round, client), so the Flower variant
(``w1_flower.py``), whose clients run in any order, draws exactly the same batches.

Usage::

    python benchmarks/w1_plain.py --npz ../shared/bench/w1_nslkdd.npz --rounds 10 --out plain.json

Prints one JSON line per round (``round``, ``seconds``, ``accuracy``) and writes the result JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

BATCH_SIZE = 32
LR = 0.05
HIDDEN = (64, 32)
DEFAULT_NPZ = Path(__file__).resolve().parents[2] / "shared" / "bench" / "w1_nslkdd.npz"


SHUFFLES = ("fedledger", "reference")


def batch_order(seed: int, rnd: int, cid: int, n: int, shuffle: str = "fedledger") -> torch.Tensor:
    """The permutation of client ``cid``'s ``n`` rows in round ``rnd`` (1-based).

    ``fedledger``: ``default_rng([seed, rnd, 1, cid]).permutation(n)``, as
    ``fedledger.fl.engine`` draws it. ``reference``: ``torch.randperm`` from a generator seeded
    with ``seed * 1_000_003 + cid``, the same every round.
    """
    if shuffle == "fedledger":
        return torch.from_numpy(np.random.default_rng([seed, rnd, 1, cid]).permutation(n))
    if shuffle == "reference":
        gen = torch.Generator().manual_seed(seed * 1_000_003 + cid)
        return torch.randperm(n, generator=gen)
    raise ValueError(f"unknown shuffle {shuffle!r}; choose from {SHUFFLES}")


def make_model(n_features: int, n_classes: int) -> nn.Module:
    """MLP n_features-64-ReLU-32-ReLU-n_classes, default init right after manual_seed(0)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(n_features, HIDDEN[0]),
        nn.ReLU(),
        nn.Linear(HIDDEN[0], HIDDEN[1]),
        nn.ReLU(),
        nn.Linear(HIDDEN[1], n_classes),
    )


def train_one_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, perm: torch.Tensor) -> None:
    """One local epoch of plain SGD over the permutation ``perm``, last (smaller) batch kept."""
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    model.train()
    for start in range(0, x.shape[0], BATCH_SIZE):
        idx = perm[start : start + BATCH_SIZE]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x).argmax(dim=1) == y).float().mean())


class TreeRssSampler:
    """Peak of the summed RSS of this process and its descendants, sampled every ``interval`` s.

    Falls back to this process's own ``ru_maxrss`` when psutil is not installed.
    """

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += proc.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._sample())
            self._stop.wait(self.interval)

    def start(self) -> TreeRssSampler:
        try:
            import psutil  # noqa: F401
        except ImportError:
            return self
        self._thread.start()
        return self

    def stop(self) -> float:
        """Stop sampling; the peak in MB (at least this process's own ru_maxrss)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        return max(self.peak_bytes, self_peak) / 2**20


def summarise(
    framework: str, history: list[dict[str, Any]], sampler: TreeRssSampler
) -> dict[str, Any]:
    """The fields every W1 result JSON shares: timings, final accuracy, rounds, peak RSS."""
    times = [r["seconds"] for r in history]
    return {
        "framework": framework,
        "seconds_per_round_median": round(statistics.median(times), 4),
        "seconds_per_round_median_excl_first": round(
            statistics.median(times[1:]) if len(times) > 1 else times[0], 4
        ),
        "final_accuracy": history[-1]["accuracy"],
        "rounds": history,
        "peak_rss_mb": round(sampler.stop(), 1),
    }


def run(npz: Path, rounds: int, seed: int = 0, shuffle: str = "fedledger") -> dict[str, Any]:
    torch.set_num_threads(1)
    sampler = TreeRssSampler().start()
    with np.load(npz) as data:
        x_train = torch.from_numpy(data["x_train"])
        y_train = torch.from_numpy(data["y_train"]).long()
        client = data["client"]
        x_test = torch.from_numpy(data["x_test"])
        y_test = torch.from_numpy(data["y_test"]).long()
    n_classes = int(max(int(y_train.max()), int(y_test.max())) + 1)
    client_ids = np.unique(client)
    shards = []
    for cid in client_ids:
        idx = torch.from_numpy(np.flatnonzero(client == cid))
        shards.append((int(cid), x_train[idx].contiguous(), y_train[idx].contiguous()))
    total = sum(x.shape[0] for _, x, _ in shards)

    global_model = make_model(x_train.shape[1], n_classes)
    global_state = {k: v.detach().clone() for k, v in global_model.state_dict().items()}
    local = make_model(x_train.shape[1], n_classes)

    history: list[dict[str, Any]] = []
    for rnd in range(1, rounds + 1):
        t0 = time.perf_counter()
        acc_state = {k: torch.zeros_like(v) for k, v in global_state.items()}
        for cid, x, y in shards:
            local.load_state_dict(global_state)
            train_one_epoch(local, x, y, batch_order(seed, rnd, cid, x.shape[0], shuffle))
            weight = x.shape[0] / total
            with torch.no_grad():
                for k, v in local.state_dict().items():
                    acc_state[k].add_(v, alpha=weight)
        global_state = acc_state
        global_model.load_state_dict(global_state)
        acc = accuracy(global_model, x_test, y_test)
        seconds = time.perf_counter() - t0
        row = {"round": rnd, "seconds": round(seconds, 4), "accuracy": round(acc, 6)}
        history.append(row)
        print(json.dumps(row), flush=True)

    return {
        **summarise("plain-pytorch", history, sampler),
        "clients": len(shards),
        "shuffle": shuffle,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "pid": os.getpid(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--npz", type=Path, default=DEFAULT_NPZ, help="W1 arrays (make_w1.py)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch permutations")
    parser.add_argument(
        "--shuffle", choices=SHUFFLES, default="fedledger", help="batch order (see batch_order)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    args = parser.parse_args(argv)
    if not args.npz.is_file():
        print(f"error: W1 arrays not found: {args.npz}", file=sys.stderr)
        return 2
    result = run(args.npz, args.rounds, args.seed, args.shuffle)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"plain-pytorch: {result['seconds_per_round_median']:.3f} s/round (median), "
        f"final accuracy {result['final_accuracy']:.4f}, peak RSS {result['peak_rss_mb']:.0f} MB",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
