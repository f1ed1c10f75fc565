"""What the ledger costs: W1 round time with and without it, and transactions per round.

Part 1 runs W1 (``benchmarks/w1_fedledger.toml``) with ``ledger.backend = "none"`` and with the
default embedded ledger (signatures, one gateway, 3 validators, the chain), alternating
``--repeats`` times so both see the same machine load, and reports the median seconds per round
(without round 1) and their ratio, plus where the ledger's time goes (median per phase).

Part 2 runs the offline synthetic workload with 10, 100 and 1000 devices on the embedded ledger
and reports transactions and gas per round (and the one-off registration), which must not grow
with the number of devices.

Each run is a ``fedledger run`` subprocess with ``OMP_NUM_THREADS=1``; results go to
``benchmarks/results/ledger_overhead.{json,md}``.

    python benchmarks/ledger_overhead.py                       # 10 rounds, 3 repeats, 10/100/1000
    python benchmarks/ledger_overhead.py --rounds 5 --repeats 1 --devices 10,100
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
from pathlib import Path
from typing import Any

from _runs import median_excl_first, run

HERE = Path(__file__).resolve().parent
DEFAULT_NPZ = HERE.parent.parent / "shared" / "bench" / "w1_nslkdd.npz"
RESULTS = HERE / "results"
PHASES = ("fetch", "train", "sign", "validate", "network", "chain", "evaluate", "records")


def part_w1(npz: Path, rounds: int, repeats: int, stamp: Path) -> dict[str, Any]:
    base = [
        str(HERE / "w1_fedledger.toml"),
        "--set",
        f"data.path={npz}",
        "--set",
        f"train.rounds={rounds}",
    ]
    per: dict[str, list[float]] = {"none": [], "embedded": []}
    phases: dict[str, list[float]] = {p: [] for p in PHASES}
    accuracy: dict[str, float] = {}
    for rep in range(repeats):
        for backend in ("none", "embedded"):
            records, _ = run(
                [*base, "--set", f"ledger.backend={backend}"], stamp / f"w1-{backend}-{rep}"
            )
            per[backend].append(median_excl_first(records))
            accuracy[backend] = records[-1]["accuracy"]
            print(f"W1 {backend:8s} repeat {rep + 1}: {per[backend][-1]:.3f} s/round", flush=True)
            if backend == "embedded":
                for p in PHASES:
                    phases[p] += [r["timings"].get(p, 0.0) for r in records[1:]]
    ratios = [e / n for n, e in zip(per["none"], per["embedded"], strict=True)]
    return {
        "rounds": rounds,
        "repeats": repeats,
        "none_s_per_round": per["none"],
        "embedded_s_per_round": per["embedded"],
        "ratios": ratios,
        "median_ratio": statistics.median(ratios),
        "final_accuracy": accuracy,
        "embedded_phase_medians_s": {p: statistics.median(v) for p, v in phases.items() if v},
    }


def part_devices(devices: list[int], stamp: Path) -> list[dict[str, Any]]:
    rows = []
    for n in devices:
        out = stamp / f"devices-{n}"
        records, _ = run(
            [
                "--set",
                f"data.clients={n}",
                "--set",
                "train.rounds=3",
                "--set",
                "train.local_epochs=1",
            ],
            out,
        )
        chain = [json.loads(x) for x in (out / "ledger" / "chain.jsonl").read_text().splitlines()]
        setup = sum(1 for x in chain if x.get("round") == 0 and "raw" in x)
        led = [r["ledger"] for r in records]
        rows.append(
            {
                "devices": n,
                "gateways": sum(
                    1
                    for x in json.loads((out / "ledger" / "deployment.json").read_text())["members"]
                    if x["role"] == "gateway"
                ),
                "transactions_per_round": [x["transactions"] for x in led],
                "gas_per_round": [x["gas"] for x in led],
                "setup_transactions": setup,
                "s_per_round": median_excl_first(records),
            }
        )
        print(
            f"{n} devices: {rows[-1]['transactions_per_round']} transactions per round, "
            f"{setup} set-up transactions",
            flush=True,
        )
    return rows


def markdown(w1: dict[str, Any], devices: list[dict[str, Any]]) -> str:
    lines = [
        "| W1, 10 rounds | s/round (median without round 1) | final accuracy |",
        "| --- | ---: | ---: |",
        f'| `ledger.backend = "none"` | {statistics.median(w1["none_s_per_round"]):.3f} | '
        f"{w1['final_accuracy']['none']:.4f} |",
        f"| embedded ledger, 3 validators | {statistics.median(w1['embedded_s_per_round']):.3f} | "
        f"{w1['final_accuracy']['embedded']:.4f} |",
        "",
        f"Ledger overhead: ×{w1['median_ratio']:.3f} (per repeat: "
        + ", ".join(f"×{r:.3f}" for r in w1["ratios"])
        + ")",
        "",
        "Embedded run, median seconds per phase: "
        + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in w1["embedded_phase_medians_s"].items()),
        "",
        "| devices | gateways | transactions per round | gas per round | set-up transactions "
        "| s/round |",
        "| ---: | ---: | --- | --- | ---: | ---: |",
    ]
    for d in devices:
        lines.append(
            f"| {d['devices']} | {d['gateways']} | {d['transactions_per_round']} | "
            f"{d['gas_per_round']} | {d['setup_transactions']} | {d['s_per_round']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--npz", type=Path, default=DEFAULT_NPZ)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--devices", default="10,100,1000")
    args = ap.parse_args()
    stamp = RESULTS / "ledger-runs" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    stamp.mkdir(parents=True)
    w1 = part_w1(args.npz, args.rounds, args.repeats, stamp)
    devices = part_devices([int(n) for n in args.devices.split(",") if n], stamp)
    table = markdown(w1, devices)
    (RESULTS / "ledger_overhead.json").write_text(
        json.dumps({"w1": w1, "devices": devices}, indent=1)
    )
    (RESULTS / "ledger_overhead.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
