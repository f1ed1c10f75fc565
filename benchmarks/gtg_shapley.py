"""GTG-Shapley against exact Shapley on 8-device runs: agreement and model evaluations.

For every workload and seed, runs the same 8-device FedAvg run (``ledger.backend = "none"``)
once per contribution measure (``incentives.method``): ``shapley`` (exact, 2^8 coalition
evaluations per round, the reference), ``gtg``, ``loo``, ``cosine`` and ``data_size``. Reports
per measure the Spearman rank correlation of the devices' summed contributions with exact
Shapley's, its model evaluations as a share of exact Shapley's, and the run's seconds.

Workloads: ``synthetic`` (the default run's data) and, when the shared datasets are present,
``nsl-kdd`` (Dirichlet 0.5 over 8 devices). One torch thread per run (``_runs.run``).
Results go to ``benchmarks/results/gtg_shapley.{json,md}``, run folders to
``benchmarks/results/gtg-runs/STAMP/``.

    python benchmarks/gtg_shapley.py                 # seeds 0, 1, 2
    python benchmarks/gtg_shapley.py --seeds 1 --rounds 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _provenance import code_state
from _runs import run

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
NSL = HERE.parent.parent / "shared" / "datasets" / "nsl_kdd"
METHODS = ("shapley", "gtg", "loo", "cosine", "data_size")
BASE = ["--set", "data.clients=8", "--set", "ledger.backend=none", "--set", "strategy.name=fedavg"]


def workloads() -> dict[str, list[str]]:
    """Name → extra ``--set`` arguments."""
    out = {"synthetic": []}
    if NSL.is_dir():
        out["nsl-kdd"] = [
            "--set", "data.name=nsl-kdd", "--set", f"data.dir={NSL}",
            "--set", "data.partition=dirichlet", "--set", "data.alpha=0.5",
        ]  # fmt: skip
    return out


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (average ranks for ties)."""

    def ranks(x: list[float]) -> np.ndarray:
        v = np.asarray(x)
        order = v.argsort(kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for value in np.unique(v):  # ties share their mean rank
            r[v == value] = r[v == value].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def measure(seeds: list[int], rounds: int, stamp: str) -> list[dict[str, Any]]:
    rows = []
    for name, extra in workloads().items():
        for seed in seeds:
            totals: dict[str, dict[str, float]] = {}
            found: dict[str, dict[str, Any]] = {}
            for method in METHODS:
                out = RESULTS / "gtg-runs" / stamp / f"{name}-s{seed}-{method}"
                args = [
                    *BASE,
                    *extra,
                    "--set",
                    f"train.seed={seed}",
                    "--set",
                    f"train.rounds={rounds}",
                ]
                args += ["--set", f"incentives.method={method}"]
                _, wall = run(args, out)
                summary = json.loads((out / "summary.json").read_text())
                totals[method] = summary["contributions"]["totals"]
                found[method] = {
                    "evaluations": summary["contributions"]["evaluations"],
                    "seconds": round(wall, 2),
                    "accuracy": summary["final"]["accuracy"],
                }
                print(f"{name} seed {seed} {method}: {found[method]}", flush=True)
            devices = sorted(totals["shapley"], key=int)
            exact = [totals["shapley"][d] for d in devices]
            for method in METHODS:
                ours = [totals[method][d] for d in devices]
                rows.append(
                    {
                        "workload": name,
                        "seed": seed,
                        "method": method,
                        "spearman": round(spearman(exact, ours), 4),
                        "evaluations": found[method]["evaluations"],
                        "share_of_exact": round(
                            found[method]["evaluations"] / found["shapley"]["evaluations"], 4
                        ),
                        "seconds": found[method]["seconds"],
                        "totals": ours,
                    }
                )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| workload | seed | method | Spearman vs exact | model evaluations | share of exact "
        "| seconds |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['workload']} | {r['seed']} | `{r['method']}` | {r['spearman']:.3f} | "
            f"{r['evaluations']} | {r['share_of_exact']:.3f} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 … N−1 (default 3)")
    parser.add_argument("--rounds", type=int, default=20, help="rounds per run (default 20)")
    args = parser.parse_args()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    before = code_state()
    rows = measure(list(range(args.seeds)), args.rounds, stamp)
    after = code_state()
    command = "python benchmarks/gtg_shapley.py " + " ".join(sys.argv[1:])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gtg_shapley.json").write_text(
        json.dumps(
            {"command": command, "stamp": stamp, "code": before, "code_after": after, "rows": rows},
            indent=2,
        )
        + "\n"
    )
    text = f"`{command}` ({stamp}, commit {before['commit']})\n\n{table(rows)}\n"
    (RESULTS / "gtg_shapley.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
