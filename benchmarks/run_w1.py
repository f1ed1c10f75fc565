"""Run benchmark W1 (NSL-KDD FedAvg throughput) for fedledger, a plain PyTorch loop and Flower.

The three run one after another as subprocesses, each with ``OMP_NUM_THREADS=1
MKL_NUM_THREADS=1``; the harness samples each child's process tree (the child and all its
descendants, e.g. Ray's daemons and workers) every 0.1 s with psutil and keeps the peak of the
summed RSS. It then prints a Markdown table and writes ``benchmarks/results/w1.json`` and
``benchmarks/results/w1.md``.

Usage::

    python benchmarks/run_w1.py                          # all three, 10 rounds
    python benchmarks/run_w1.py --skip-flower --rounds 3
    python benchmarks/run_w1.py --frameworks plain,flower

The Flower side needs ``benchmarks/.venv-flower`` (``bash benchmarks/setup_flower_env.sh``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_NPZ = REPO.parent / "shared" / "bench" / "w1_nslkdd.npz"
FLOWER_PYTHON = HERE / ".venv-flower" / "bin" / "python"
RESULTS = HERE / "results"
FRAMEWORKS = ("fedledger", "plain", "flower", "flower-reload")
DEFAULT_FRAMEWORKS = ("fedledger", "plain", "flower")
LABELS = {
    "fedledger": "fedledger",
    "plain": "plain PyTorch loop",
    "flower": "Flower 1.41 simulation (Ray)",
    "flower-reload": "Flower 1.41 simulation (Ray), data reloaded per call",
}


@dataclass
class Outcome:
    """What one framework's run produced."""

    framework: str
    command: list[str]
    returncode: int | None = None
    wall_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    peak_rss_single_mb: float = 0.0
    max_processes: int = 0
    rounds: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    log: str = ""
    loadavg_before: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.rounds) and not self.error

    def seconds(self) -> list[float]:
        return [float(r["seconds"]) for r in self.rounds]

    def median(self) -> float | None:
        return statistics.median(self.seconds()) if self.rounds else None

    def median_excl_first(self) -> float | None:
        s = self.seconds()
        if not s:
            return None
        return statistics.median(s[1:]) if len(s) > 1 else s[0]

    def final_accuracy(self) -> float | None:
        return float(self.rounds[-1]["accuracy"]) if self.rounds else None

    def to_json(self) -> dict[str, Any]:
        return {
            "framework": self.framework,
            "label": LABELS[self.framework],
            "ok": self.ok,
            "error": self.error,
            "returncode": self.returncode,
            "command": self.command,
            "seconds_per_round_median": _round(self.median()),
            "seconds_per_round_median_excl_first": _round(self.median_excl_first()),
            "final_accuracy": self.final_accuracy(),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "peak_rss_largest_process_mb": round(self.peak_rss_single_mb, 1),
            "max_processes": self.max_processes,
            "wall_seconds": round(self.wall_seconds, 2),
            "loadavg_before": self.loadavg_before,
            "rounds": self.rounds,
            "log": self.log,
        }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


class TreeSampler:
    """Peak summed RSS of a process and its descendants, sampled every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        import psutil

        self._psutil = psutil
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.peak_single = 0
        self.max_procs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        psutil = self._psutil
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                procs = []
            total = 0
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                self.peak_single = max(self.peak_single, rss)
            self.peak = max(self.peak, total)
            self.max_procs = max(self.max_procs, len(procs))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _relay(stream: TextIO, log: TextIO, prefix: str) -> None:
    """Copy the child's output to its log; echo its per-round JSON lines to the terminal."""
    for line in stream:
        log.write(line)
        log.flush()
        if line.startswith("{"):
            print(f"  [{prefix}] {line.rstrip()}", flush=True)


def run_child(framework: str, command: list[str], log_path: Path, cwd: Path) -> Outcome:
    """Run one framework's command, sampling its memory; rounds are filled in by the caller."""
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    outcome = Outcome(framework, command, loadavg_before=os.getloadavg())
    print(f"== {framework}: {' '.join(command)}", flush=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    outcome.log = str(log_path)
    t0 = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        try:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            outcome.error = f"cannot start: {exc}"
            return outcome
        sampler = TreeSampler(proc.pid)
        assert proc.stdout is not None
        relay = threading.Thread(target=_relay, args=(proc.stdout, log, framework), daemon=True)
        relay.start()
        try:
            outcome.returncode = proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            raise
        finally:
            sampler.stop()
            relay.join(timeout=10)
    outcome.wall_seconds = time.perf_counter() - t0
    outcome.peak_rss_mb = sampler.peak / 2**20
    outcome.peak_rss_single_mb = sampler.peak_single / 2**20
    outcome.max_processes = sampler.max_procs
    if outcome.returncode != 0:
        outcome.error = f"exit code {outcome.returncode}; see {log_path}"
    return outcome


def fedledger_command() -> list[str]:
    """fedledger's console script next to this interpreter, else ``python -m fedledger``."""
    exe = Path(sys.executable).parent / "fedledger"
    if exe.is_file() and os.access(exe, os.X_OK):
        return [str(exe)]
    return [sys.executable, "-m", "fedledger"]


def read_result_json(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return list(data["rounds"])


def read_metrics_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows.append(
                {
                    "round": int(row["round"]),
                    "seconds": float(row["seconds"]),
                    "accuracy": float(row["accuracy"]),
                    **{k: row[k] for k in ("macro_f1", "loss") if k in row},
                }
            )
    return rows


def run_framework(
    framework: str, npz: Path, rounds: int, run_dir: Path, shuffle: str = "fedledger"
) -> Outcome:
    log_path = run_dir / f"{framework}.log"
    env_note = ""
    if framework == "fedledger":
        out_dir = run_dir / "fedledger"
        cmd = [
            *fedledger_command(),
            "run",
            str(HERE / "w1_fedledger.toml"),
            "--set",
            f"data.path={npz}",
            "--set",
            f"train.rounds={rounds}",
            "--out",
            str(out_dir),
        ]
        env_note = "" if importlib.util.find_spec("fedledger") else " (fedledger not importable)"
        outcome = run_child(framework, cmd, log_path, REPO)
        metrics = out_dir / "metrics.jsonl"
        reader, result_file = read_metrics_jsonl, metrics
    else:
        python = sys.executable if framework == "plain" else str(FLOWER_PYTHON)
        script = HERE / ("w1_plain.py" if framework == "plain" else "w1_flower.py")
        result_file = run_dir / f"{framework}.json"
        cmd = [python, str(script), "--npz", str(npz), "--rounds", str(rounds)]
        cmd += ["--shuffle", shuffle, "--out", str(result_file)]
        if framework == "flower-reload":
            cmd.append("--reload-data")
        outcome = run_child(framework, cmd, log_path, REPO)
        reader = read_result_json
    if outcome.returncode == 0:
        try:
            outcome.rounds = reader(result_file)
        except (OSError, ValueError, KeyError) as exc:
            outcome.error = f"cannot read {result_file}: {exc}"
    if outcome.error:
        outcome.error += env_note
        print(f"   {framework} FAILED: {outcome.error}", flush=True)
    elif len(outcome.rounds) != rounds:
        outcome.error = f"{len(outcome.rounds)} of {rounds} rounds reported"
    return outcome


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def markdown_table(outcomes: list[Outcome]) -> str:
    ref = next((o for o in outcomes if o.framework == "fedledger" and o.ok), None)
    ref_median = ref.median() if ref else None
    lines = [
        "| framework | s/round (median) | s/round (median excl. round 1) | final accuracy "
        "| peak RSS (MB) | speed-up of fedledger vs this row |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for o in outcomes:
        if not o.ok:
            lines.append(f"| {LABELS[o.framework]} | failed: {o.error} | | | | |")
            continue
        median = o.median()
        speedup = f"{median / ref_median:.2f}×" if ref_median and median is not None else "n/a"
        lines.append(
            f"| {LABELS[o.framework]} | {_fmt(median, '.3f')} | "
            f"{_fmt(o.median_excl_first(), '.3f')} | {_fmt(o.final_accuracy(), '.4f')} | "
            f"{o.peak_rss_mb:.0f} | {speedup} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="W1 throughput: fedledger vs a plain PyTorch loop vs Flower's simulation.",
    )
    parser.add_argument("--npz", type=Path, default=DEFAULT_NPZ, help=f"default {DEFAULT_NPZ}")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--skip-flower", action="store_true", help="leave Flower out")
    parser.add_argument(
        "--frameworks",
        default=",".join(DEFAULT_FRAMEWORKS),
        help=f"comma-separated, run in this order; any of {', '.join(FRAMEWORKS)} "
        "(flower-reload: Flower clients reload the npz in every call)",
    )
    parser.add_argument(
        "--shuffle",
        choices=("fedledger", "reference"),
        default="fedledger",
        help="batch order of the plain and Flower runs: fedledger's (same batches, so the "
        "accuracies must agree) or the shared/bench reference scheme",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="results folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    unknown = [f for f in frameworks if f not in FRAMEWORKS]
    if unknown or not frameworks:
        print(f"error: unknown framework(s) {unknown}; choose from {FRAMEWORKS}", file=sys.stderr)
        return 2
    if args.skip_flower:
        frameworks = [f for f in frameworks if not f.startswith("flower")]
    npz = args.npz.resolve()
    if not npz.is_file():
        print(
            f"error: W1 arrays not found at {npz} (build them with shared/bench/make_w1.py "
            "or pass --npz)",
            file=sys.stderr,
        )
        return 2
    if any(f.startswith("flower") for f in frameworks) and not FLOWER_PYTHON.is_file():
        print(
            f"error: Flower venv missing ({FLOWER_PYTHON}); run `bash benchmarks/"
            "setup_flower_env.sh` first, or pass --skip-flower",
            file=sys.stderr,
        )
        return 2
    try:
        import psutil  # noqa: F401
    except ImportError:
        print("error: psutil is needed to measure peak RSS (pip install psutil)", file=sys.stderr)
        return 2
    if args.rounds < 1:
        print("error: --rounds must be at least 1", file=sys.stderr)
        return 2

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = args.results / "w1-runs" / stamp
    if run_dir.exists():
        shutil.rmtree(run_dir)
    outcomes = [run_framework(f, npz, args.rounds, run_dir, args.shuffle) for f in frameworks]

    table = markdown_table(outcomes)
    now = dt.datetime.now().astimezone()
    header = (
        f"W1 (NSL-KDD, 100 clients, MLP 122-64-32-5, FedAvg, {args.rounds} rounds), "
        f"{now:%Y-%m-%d %H:%M %Z} on {platform.node()} ({os.cpu_count()} cores, "
        f"Python {platform.python_version()}); 1 torch thread per process; peak RSS is the "
        "summed RSS of each run's process tree, sampled every 0.1 s."
    )
    print()
    print(header)
    print()
    print(table)
    summary = {
        "workload": "W1",
        "date": now.isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "npz": str(npz),
        "rounds": args.rounds,
        "run_dir": str(run_dir),
        "results": {o.framework: o.to_json() for o in outcomes},
        "table_markdown": table,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "w1.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (args.results / "w1.md").write_text(f"{header}\n\n{table}\n", encoding="utf-8")
    print(f"\nwrote {args.results / 'w1.json'} and {args.results / 'w1.md'}")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
