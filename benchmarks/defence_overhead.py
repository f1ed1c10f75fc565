"""What each defence costs on W1: round time with each ``strategy.name``.

Runs W1 (``benchmarks/w1_fedledger.toml``, ``ledger.backend = "none"``, no attack) once per
strategy in every repeat, strategies alternating so all see the same machine load: ``fedavg``
(the baseline), ``screen`` (the default anomaly screen: the fingerprints of every update plus
how much each update alone raises the loss on the validators' root data), ``median``,
``trimmed_mean``, ``krum``, ``bulyan``, ``fltrust`` (the server trains a reference update on
the root data every round) and ``clipping``, each with its default ``[strategy]`` settings.
Reports per strategy the median seconds per round without round 1, its ratio to ``fedavg`` per
repeat and the median and range of those ratios, the median of each phase of
``metrics.jsonl``'s ``timings`` (train / aggregate / evaluate; ``aggregate`` holds everything
the strategy does between training and evaluation, FLTrust's reference update and the
screen's root-data losses included), the median number of devices the strategy flagged per
round (on this all-honest fleet every flag is a false alarm) and the final accuracy.

With ``--enclave`` every strategy is also run with ``security.secure_aggregation = enclave``
(in the same repeats, alternating with the others); its ratios are to ``fedavg`` with the
enclave, and the table also gives the ratio to plain ``fedavg`` and the accuracy difference
to the same strategy without the enclave.

Each run is a ``fedledger run`` subprocess with ``OMP_NUM_THREADS=1``; results go to
``benchmarks/results/defence_overhead.{json,md}``, the run folders to
``benchmarks/results/defence-runs/STAMP/``.

    python benchmarks/defence_overhead.py                      # 10 rounds, 3 repeats
    python benchmarks/defence_overhead.py --enclave --strategies fedavg,screen
    python benchmarks/defence_overhead.py --rounds 5 --repeats 1 --strategies fedavg,krum

``--name`` changes the results' file name.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from _provenance import code_state
from _runs import median_excl_first, run

HERE = Path(__file__).resolve().parent
DEFAULT_NPZ = HERE.parent.parent / "shared" / "bench" / "w1_nslkdd.npz"
RESULTS = HERE / "results"
STRATEGIES = (
    "fedavg",
    "screen",
    "median",
    "trimmed_mean",
    "krum",
    "bulyan",
    "fltrust",
    "clipping",
)
BASELINE = "fedavg"
SECURITY = ("none", "enclave")
PHASE_ORDER = ("setup", "train", "aggregate", "evaluate")


def config_args(strategy: str, security: str) -> list[str]:
    args = ["--set", f"strategy.name={strategy}"]
    if security != "none":
        args += ["--set", f"security.secure_aggregation={security}"]
    return args


def measure(
    npz: Path,
    rounds: int,
    repeats: int,
    strategies: list[str],
    securities: list[str],
    stamp: Path,
) -> list[dict[str, Any]]:
    """Every strategy under every security mode, all alternating within each repeat."""
    base = [
        str(HERE / "w1_fedledger.toml"),
        "--set",
        f"data.path={npz}",
        "--set",
        f"train.rounds={rounds}",
    ]
    configs = [(sec, s) for sec in securities for s in strategies]
    per: dict[tuple[str, str], list[float]] = {c: [] for c in configs}
    walls: dict[tuple[str, str], list[float]] = {c: [] for c in configs}
    phases: dict[tuple[str, str], dict[str, list[float]]] = {c: {} for c in configs}
    accuracy: dict[tuple[str, str], list[float]] = {c: [] for c in configs}
    flagged: dict[tuple[str, str], list[int]] = {c: [] for c in configs}
    for rep in range(repeats):
        for sec, strategy in configs:
            c = (sec, strategy)
            records, wall = run(
                [*base, *config_args(strategy, sec)], stamp / f"{sec}-{strategy}-{rep}"
            )
            per[c].append(median_excl_first(records))
            walls[c].append(wall)
            accuracy[c].append(records[-1]["accuracy"])
            for r in records[1:]:
                for phase, seconds in r["timings"].items():
                    phases[c].setdefault(phase, []).append(seconds)
            flagged[c] += [len(r.get("screen", {}).get("flagged", [])) for r in records]
            print(
                f"{sec:8s} {strategy:13s} repeat {rep + 1}: {per[c][-1]:.3f} s/round, "
                f"aggregate {statistics.median(phases[c]['aggregate'][-(rounds - 1) :]) * 1000:.1f}"
                f" ms, accuracy {accuracy[c][-1]:.4f}, wall {wall:.1f} s",
                flush=True,
            )
    results = []
    for sec in securities:
        out: dict[str, Any] = {
            "security": sec,
            "rounds": rounds,
            "repeats": repeats,
            "strategies": {},
        }
        for strategy in strategies:
            c = (sec, strategy)
            entry: dict[str, Any] = {
                "s_per_round": per[c],
                "median_s_per_round": statistics.median(per[c]),
                "wall_s": walls[c],
                "final_accuracy": accuracy[c],
                "phase_medians_s": {p: statistics.median(v) for p, v in phases[c].items()},
                "flagged_per_round_median": statistics.median(flagged[c]),
                "flagged_per_round_max": max(flagged[c]),
            }
            b = (sec, BASELINE)
            if b in per and strategy != BASELINE:
                ratios = [m / n for n, m in zip(per[b], per[c], strict=True)]
                entry["ratios"] = ratios
                entry["median_ratio"] = statistics.median(ratios)
            plain = ("none", BASELINE)
            if sec != "none" and plain in per:
                ratios = [m / n for n, m in zip(per[plain], per[c], strict=True)]
                entry["ratios_to_plain_fedavg"] = ratios
                entry["median_ratio_to_plain_fedavg"] = statistics.median(ratios)
            same = ("none", strategy)
            if sec != "none" and same in per:
                entry["accuracy_gap_points_vs_none"] = 100 * max(
                    abs(a - b) for a, b in zip(accuracy[same], accuracy[c], strict=True)
                )
            out["strategies"][strategy] = entry
        results.append(out)
    return results


def ratio_cell(median: float, each: list[float]) -> str:
    return f"×{median:.2f} (×{min(each):.2f}–{max(each):.2f})"


def accuracy_cell(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{hi:.4f}" if lo == hi else f"{lo:.4f}–{hi:.4f}"


def markdown(result: dict[str, Any]) -> str:
    strategies = result["strategies"]
    sec = result["security"]
    enclave = sec != "none"
    phases: list[str] = []
    for entry in strategies.values():
        phases += [p for p in entry["phase_medians_s"] if p not in phases]
    phases.sort(key=lambda p: PHASE_ORDER.index(p) if p in PHASE_ORDER else len(PHASE_ORDER))
    head = (
        "| strategy | s/round (median excl. round 1) | × fedavg (median, range) | aggregate (ms) "
        "| train (ms) | flagged per round (median / max) | final accuracy |"
    )
    rule = "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    if enclave:
        head += " × plain fedavg (median, range) | Δ accuracy vs no enclave (points) |"
        rule += " ---: | ---: |"
    lines = [
        f'W1, {result["rounds"]} rounds, `ledger.backend = "none"`, '
        f'`security.secure_aggregation = "{sec}"`, {result["repeats"]} repeats',
        "",
        head,
        rule,
    ]
    for strategy, e in strategies.items():
        ratio = ratio_cell(e["median_ratio"], e["ratios"]) if "median_ratio" in e else "—"
        ph = e["phase_medians_s"]
        row = (
            f"| `{strategy}` | {e['median_s_per_round']:.3f} | {ratio} "
            f"| {ph['aggregate'] * 1000:.1f} | {ph['train'] * 1000:.1f} "
            f"| {e['flagged_per_round_median']:g} / {e['flagged_per_round_max']} "
            f"| {accuracy_cell(e['final_accuracy'])} |"
        )
        if enclave:
            plain = (
                ratio_cell(e["median_ratio_to_plain_fedavg"], e["ratios_to_plain_fedavg"])
                if "median_ratio_to_plain_fedavg" in e
                else "—"
            )
            gap = e.get("accuracy_gap_points_vs_none")
            row += f" {plain} | {'—' if gap is None else f'{gap:.2f}'} |"
        lines.append(row)
    lines += [
        "",
        "Median seconds per phase (rounds 2 to the last, all repeats), ms:",
        "",
        "| strategy | " + " | ".join(phases) + " |",
        "| --- | " + " | ".join("---:" for _ in phases) + " |",
    ]
    for strategy, e in strategies.items():
        cells = [
            f"{e['phase_medians_s'][p] * 1000:.1f}" if p in e["phase_medians_s"] else "—"
            for p in phases
        ]
        lines.append(f"| `{strategy}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--npz", type=Path, default=DEFAULT_NPZ)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--strategies", default=",".join(STRATEGIES), help="comma-separated, fedavg first"
    )
    ap.add_argument(
        "--enclave",
        action="store_true",
        help="also run each with security.secure_aggregation=enclave",
    )
    ap.add_argument("--name", default="defence_overhead", help="results file name (no suffix)")
    args = ap.parse_args()
    strategies = [s for s in args.strategies.split(",") if s]
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        ap.error(f"unknown strategy(ies) {sorted(unknown)}; choose from {', '.join(STRATEGIES)}")
    if args.rounds < 2:
        ap.error("--rounds must be at least 2 (round 1 is left out of the medians)")
    if BASELINE in strategies:  # the baseline first, as in the tables
        strategies = [BASELINE] + [s for s in strategies if s != BASELINE]
    stamp = RESULTS / "defence-runs" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    stamp.mkdir(parents=True)
    code = code_state()
    securities = list(SECURITY) if args.enclave else ["none"]
    results = measure(args.npz, args.rounds, args.repeats, strategies, securities, stamp)
    command = "python benchmarks/defence_overhead.py " + " ".join(sys.argv[1:])
    tables = "\n".join(markdown(r) for r in results)
    after = code_state()
    (RESULTS / f"{args.name}.json").write_text(
        json.dumps(
            {
                "command": command.strip(),
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "code": code,
                "code_after": after,
                "runs": str(stamp),
                "results": results,
            },
            indent=1,
        )
    )
    note = f"Code: commit {code['commit']}, src diff {code['src_diff_sha256']}.\n\n"
    if after != code:
        note += "**The code under src/ changed during the measurement.**\n\n"
        print("warning: the code under src/ changed during the measurement", file=sys.stderr)
    (RESULTS / f"{args.name}.md").write_text(f"```bash\n{command.strip()}\n```\n\n{note}{tables}")
    print(tables)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
