"""fedledger's local trainers side by side on one W1 round (training only, no evaluation).

Usage::

    python benchmarks/trainers.py [--npz ../shared/bench/w1_nslkdd.npz] [--repeats 3]

Prints, per trainer, the median seconds of one round of local training for all 100 W1 clients
(1 torch thread), its speed relative to the sequential trainer, and the largest parameter
difference from the sequential trainer's result.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from fedledger.fl import (
    ClassificationTask,
    ParamLayout,
    SequentialTrainer,
    StackedTrainer,
    VmapTrainer,
    make_plan,
)
from fedledger.models import MLP

DEFAULT_NPZ = Path(__file__).resolve().parents[2] / "shared" / "bench" / "w1_nslkdd.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--npz", type=Path, default=DEFAULT_NPZ)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with np.load(args.npz) as d:
        x, y, client = torch.from_numpy(d["x_train"]), torch.from_numpy(d["y_train"]), d["client"]
    rows = [np.flatnonzero(client == c) for c in range(int(client.max()) + 1)]
    torch.manual_seed(0)
    model = MLP((x.shape[1],), [64, 32], int(y.max()) + 1)
    task = ClassificationTask([str(i) for i in range(int(y.max()) + 1)], 0)
    start = ParamLayout.of(model).flatten(dict(model.named_parameters())).detach()
    plan = make_plan(rows, 32, 1, [np.random.default_rng([0, 1, 1, c]) for c in range(len(rows))])
    results = {}
    for cls in (SequentialTrainer, VmapTrainer, StackedTrainer):
        trainer = cls(model, task)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = trainer.train(start, plan, x, y, 0.05, 0.0)
            times.append(time.perf_counter() - t0)
        results[cls.name] = (statistics.median(times), out)
    base_t, base_out = results["sequential"]
    print("| trainer | s per W1 round (median) | vs sequential | max abs diff |")
    print("| --- | ---: | ---: | ---: |")
    for name, (t, out) in results.items():
        diff = float((out - base_out).abs().max())
        print(f"| {name} | {t:.3f} | {base_t / t:.1f}× | {diff:.1e} |")


if __name__ == "__main__":
    main()
