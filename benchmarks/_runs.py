"""Running ``fedledger run`` from a benchmark: one subprocess per config, one torch thread."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def fedledger() -> list[str]:
    """fedledger's console script next to this interpreter, else ``python -m fedledger``."""
    script = Path(sys.executable).with_name("fedledger")
    return [str(script)] if script.exists() else [sys.executable, "-m", "fedledger"]


def run(args: list[str], out: Path) -> tuple[list[dict[str, Any]], float]:
    """``fedledger run ARGS --out OUT`` with ``OMP_NUM_THREADS=1``; its ``metrics.jsonl``
    records and the wall time. Exits with the command's stderr if it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [*fedledger(), "run", *args, "--out", str(out)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return records, wall


def median_excl_first(records: list[dict[str, Any]]) -> float:
    """Median seconds per round without round 1 (warm-up), or round 1's if it is the only."""
    seconds = [r["seconds"] for r in records[1:]] or [records[0]["seconds"]]
    return float(statistics.median(seconds))
