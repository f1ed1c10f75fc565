"""What secure aggregation costs on W1: round time with each ``security.secure_aggregation``.

Runs W1 (``benchmarks/w1_fedledger.toml``, ``ledger.backend = "none"``) once per mode in every
repeat, modes alternating so all see the same machine load: ``none``, ``enclave`` (updates sealed
to the simulated enclave process), ``secagg+`` (Bell et al. 2020, with
``security.secagg_dropout = --dropout`` simulated dropouts) and ``ckks`` (TenSEAL, the enclave
holds the key). Reports per mode the median seconds per round without round 1, its ratio to
``none`` per repeat and the median of those ratios (``secagg+0``, ``secagg+`` without
dropouts, is run too, to separate the dropouts' share), the median of each phase of
``metrics.jsonl``'s ``timings`` (train / aggregate / evaluate; ``aggregate`` holds the whole
protected exchange: key set-up or attestation, every device's protect, and the aggregation),
and the final accuracy, which must be within 0.5 points of ``none`` for every mode that
aggregates the same devices (not ``secagg+`` with dropouts: the dropped devices' data is
missing from its rounds, so it is reported but not held to the bound).

With ``--ledger`` it runs the same modes again on the embedded ledger (``ledger.backend =
"embedded"``), where the timings split into fetch / train / protect / sign / network /
aggregate / validate / chain / evaluate / records.

Each run is a ``fedledger run`` subprocess with ``OMP_NUM_THREADS=1``; results go to
``benchmarks/results/secure_overhead.{json,md}``, the run folders to
``benchmarks/results/secure-runs/STAMP/``.

    python benchmarks/secure_overhead.py                       # 10 rounds, 3 repeats
    python benchmarks/secure_overhead.py --ledger              # also on the embedded ledger
    python benchmarks/secure_overhead.py --rounds 5 --repeats 1 --modes none,enclave
    python benchmarks/secure_overhead.py --busy 1 --modes none,secagg+ --name secure_overhead_busy

``--busy N`` keeps N cores busy with spinning processes while it measures (what a shared machine
does at times): the modes that overlap work with training (SecAgg+ key set-up, enclave
attestation) need a free core for it. ``--name`` changes the results' file name.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _provenance import code_state
from _runs import median_excl_first, run

HERE = Path(__file__).resolve().parent
DEFAULT_NPZ = HERE.parent.parent / "shared" / "bench" / "w1_nslkdd.npz"
RESULTS = HERE / "results"
MODES = ("none", "enclave", "secagg+", "secagg+0", "ckks")
"""``secagg+0`` is ``secagg+`` without dropouts: it separates the cost and the accuracy effect of
the dropouts from those of the masking."""
TARGETS = {"enclave": 1.3, "secagg+": 2.0}
"""Upper bounds on the ratio to ``none`` (from the issue); ``ckks`` has none."""
ACCURACY_TOLERANCE = 0.005
PHASE_ORDER = (
    "setup",
    "fetch",
    "train",
    "protect",
    "sign",
    "network",
    "aggregate",
    "validate",
    "chain",
    "evaluate",
    "records",
)


def mode_args(mode: str, dropout: float) -> list[str]:
    if mode == "secagg+0":
        return ["--set", "security.secure_aggregation=secagg+"]
    args = ["--set", f"security.secure_aggregation={mode}"]
    if mode == "secagg+":
        args += ["--set", f"security.secagg_dropout={dropout}"]
    return args


def measure(
    npz: Path,
    rounds: int,
    repeats: int,
    modes: list[str],
    dropout: float,
    backend: str,
    stamp: Path,
) -> dict[str, Any]:
    """All ``modes`` on one ledger backend, alternating within each repeat."""
    base = [
        str(HERE / "w1_fedledger.toml"),
        "--set",
        f"data.path={npz}",
        "--set",
        f"train.rounds={rounds}",
        "--set",
        f"ledger.backend={backend}",
    ]
    per: dict[str, list[float]] = {m: [] for m in modes}
    walls: dict[str, list[float]] = {m: [] for m in modes}
    phases: dict[str, dict[str, list[float]]] = {m: {} for m in modes}
    accuracy: dict[str, list[float]] = {m: [] for m in modes}
    secure: dict[str, dict[str, Any]] = {}
    for rep in range(repeats):
        for mode in modes:
            name = mode.replace("+", "plus-")
            records, wall = run(
                [*base, *mode_args(mode, dropout)], stamp / f"{backend}-{name}-{rep}"
            )
            per[mode].append(median_excl_first(records))
            walls[mode].append(wall)
            accuracy[mode].append(records[-1]["accuracy"])
            for r in records[1:]:
                for phase, seconds in r["timings"].items():
                    phases[mode].setdefault(phase, []).append(seconds)
            if "secure" in records[-1]:
                secure[mode] = records[-1]["secure"]
            print(
                f"{backend:8s} {mode:8s} repeat {rep + 1}: {per[mode][-1]:.3f} s/round, "
                f"accuracy {accuracy[mode][-1]:.4f}, wall {wall:.1f} s",
                flush=True,
            )
    out: dict[str, Any] = {"backend": backend, "rounds": rounds, "repeats": repeats, "modes": {}}
    for mode in modes:
        entry: dict[str, Any] = {
            "s_per_round": per[mode],
            "median_s_per_round": statistics.median(per[mode]),
            "wall_s": walls[mode],
            "final_accuracy": accuracy[mode],
            "phase_medians_s": {p: statistics.median(v) for p, v in phases[mode].items()},
            "secure_last_round": secure.get(mode),
        }
        if "none" in per and mode != "none":
            ratios = [m / n for n, m in zip(per["none"], per[mode], strict=True)]
            entry["ratios"] = ratios
            entry["median_ratio"] = statistics.median(ratios)
            entry["target"] = TARGETS.get(mode)
            entry["accuracy_gap_points"] = 100 * max(
                abs(a - b) for a, b in zip(accuracy["none"], accuracy[mode], strict=True)
            )
            # with dropouts other devices' data is in the model: the bound is for the same inputs
            if mode != "secagg+":
                entry["accuracy_ok"] = entry["accuracy_gap_points"] <= 100 * ACCURACY_TOLERANCE
        out["modes"][mode] = entry
    return out


def label(mode: str, dropout: float) -> str:
    if mode == "secagg+":
        return f"`secagg+`, {dropout:.0%} dropouts"
    if mode == "secagg+0":
        return "`secagg+`, no dropouts"
    return f"`{mode}`"


def markdown(result: dict[str, Any], dropout: float) -> str:
    modes = result["modes"]
    phases: list[str] = []
    for entry in modes.values():
        phases += [p for p in entry["phase_medians_s"] if p not in phases]
    phases.sort(key=lambda p: PHASE_ORDER.index(p) if p in PHASE_ORDER else len(PHASE_ORDER))
    lines = [
        f'W1, {result["rounds"]} rounds, `ledger.backend = "{result["backend"]}"`, '
        f"{result['repeats']} repeats",
        "",
        "| mode | s/round (median excl. round 1) | × none (median) | per repeat | target "
        "| final accuracy | Δ accuracy vs none (points) |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for mode, e in modes.items():
        ratio = f"×{e['median_ratio']:.2f}" if "median_ratio" in e else "—"
        each = ", ".join(f"×{r:.2f}" for r in e.get("ratios", [])) or "—"
        target = e.get("target")
        verdict = "—"
        if target is not None:
            verdict = f"≤ ×{target:g} " + ("met" if e["median_ratio"] <= target else "**missed**")
        gap = f"{e['accuracy_gap_points']:.2f}" if "accuracy_gap_points" in e else "—"
        lines.append(
            f"| {label(mode, dropout)} | {e['median_s_per_round']:.3f} | {ratio} | {each} "
            f"| {verdict} | {e['final_accuracy'][-1]:.4f} | {gap} |"
        )
    lines += [
        "",
        "Median seconds per phase (rounds 2 to the last, all repeats), ms:",
        "",
        "| mode | " + " | ".join(phases) + " |",
        "| --- | " + " | ".join("---:" for _ in phases) + " |",
    ]
    for mode, e in modes.items():
        cells = [
            f"{e['phase_medians_s'][p] * 1000:.1f}" if p in e["phase_medians_s"] else "—"
            for p in phases
        ]
        lines.append(f"| {label(mode, dropout)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@contextmanager
def busy(cores: int) -> Iterator[None]:
    """``cores`` processes spinning on the CPU for the duration (stopped by their pid)."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        yield
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--npz", type=Path, default=DEFAULT_NPZ)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated, none first")
    ap.add_argument("--dropout", type=float, default=0.1, help="security.secagg_dropout")
    ap.add_argument("--ledger", action="store_true", help="also run on the embedded ledger")
    ap.add_argument("--busy", type=int, default=0, help="cores to keep busy while measuring")
    ap.add_argument("--name", default="secure_overhead", help="results file name (no suffix)")
    args = ap.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        ap.error(f"unknown mode(s) {sorted(unknown)}; choose from {', '.join(MODES)}")
    stamp = RESULTS / "secure-runs" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    stamp.mkdir(parents=True)
    code = code_state()
    with busy(args.busy):
        backends = ["none", "embedded"] if args.ledger else ["none"]
        results = [
            measure(args.npz, args.rounds, args.repeats, modes, args.dropout, b, stamp)
            for b in backends
        ]
    command = "python benchmarks/secure_overhead.py " + " ".join(sys.argv[1:])
    tables = "\n".join(markdown(r, args.dropout) for r in results)
    after = code_state()
    (RESULTS / f"{args.name}.json").write_text(
        json.dumps(
            {
                "command": command.strip(),
                "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "code": code,
                "code_after": after,
                "dropout": args.dropout,
                "busy_cores": args.busy,
                "runs": str(stamp),
                "results": results,
            },
            indent=1,
        )
    )
    note = f"Code: commit {code['commit']}, src diff {code['src_diff_sha256']}.\n\n"
    if args.busy:
        note += f"{args.busy} core(s) kept busy by spinning processes during the runs.\n\n"
    if after != code:
        note += "**The code under src/ changed during the measurement.**\n\n"
        print("warning: the code under src/ changed during the measurement", file=sys.stderr)
    (RESULTS / f"{args.name}.md").write_text(f"```bash\n{command.strip()}\n```\n\n{note}{tables}")
    print(tables)
    failed = [
        f"{r['backend']}/{m}"
        for r in results
        for m, e in r["modes"].items()
        if e.get("accuracy_ok") is False
    ]
    if failed:
        print(f"accuracy more than 0.5 points from none: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
