"""How the secure-aggregation modes scale: per-device and aggregator cost by devices and model size.

Each mode is driven directly through its :class:`~fedledger.fl.secure.SecureContext` (as
``tests/fl/test_secure_modes.py`` does), one parameter tensor ``w`` of the given size, with
random float32 updates ~ N(0, 0.01) and sample counts drawn from 1..100
(``max_weight`` = the largest):

1. ``secagg+`` (Bell et al. 2020) with ``--dropout`` of the devices dropping out after sharing
   keys: key set-up per device (``begin_round`` / n: keys, Shamir shares, sealed boxes),
   ``protect`` per device (median), payload and set-up bytes per device, the server's
   aggregate (sum and unmask) time and its extra peak memory, and the largest error against the
   plain weighted mean of the survivors. Time inside the primitives (X25519 + HKDF key
   agreement, the ChaCha20 mask PRG, Shamir split/combine, fixed-point encoding) is measured by
   wrapping them, per phase.
2. ``ckks`` (TenSEAL, the enclave process holds the key): encryption per device, payload bytes
   (against 4 bytes per parameter in clear), the aggregator's ciphertext sum, the enclave's
   decryption, the whole aggregate, and the largest error against the plain weighted mean.
3. ``enclave``: sealing per device and the enclave's aggregate (the request to the enclave
   process, which opens, screens and averages), and the whole aggregate.

Every mode also reports the attestation share per device of ``begin_round`` where it has one.
All configurations are measured ``--repeats`` times, one pass after another, and every number
reported is the median over the passes (the per-pass rows are in the JSON). Results go to
``benchmarks/results/secure_scaling.{json,md}``.

    python benchmarks/secure_scaling.py
    python benchmarks/secure_scaling.py --secagg 100x10117,100x100000 --ckks 100x10117 --enclave ""
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch
from _provenance import code_state

from fedledger.config import load_config
from fedledger.fl.secure import SecureAggregator, SecureContext, Submission
from fedledger.fl.secure.ckks_mode import CkksMode
from fedledger.fl.secure.enclave_mode import EnclaveMode
from fedledger.fl.secure.secagg_mode import SecAggMode
from fedledger.security.secagg import fixed_point, keys, protocol, server
from fedledger.strategies import create_strategy

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
W1_PARAMS = 10_117
"""Parameters of W1's MLP (122 → 64 → 32 → 5)."""
MAX_SAMPLES = 100


# ---- helpers ------------------------------------------------------------------------------


def parse_spec(text: str) -> list[tuple[int, int]]:
    """``"100x10117,500x100000"`` → ``[(100, 10117), (500, 100000)]`` (devices × parameters)."""
    out = []
    for item in text.split(","):
        if item.strip():
            n, p = item.lower().split("x")
            out.append((int(n), int(p)))
    return out


def context(mode: str, params: int, max_weight: int, *overrides: str) -> SecureContext:
    cfg = load_config(None, [f"security.secure_aggregation={mode}", *overrides])
    return SecureContext(
        seed=0,
        names=("w",),
        sizes=(params,),
        security=cfg.security,
        strategy=cfg.strategy,
        max_weight=max_weight,
    )


def update(k: int, params: int) -> np.ndarray:
    """Device ``k``'s update, generated on demand (1000 × 100k floats stay out of memory)."""
    return np.random.default_rng([7, k]).normal(0.0, 0.01, params).astype(np.float32)


def sample_counts(n: int) -> list[int]:
    return [int(v) for v in np.random.default_rng([7, n]).integers(1, MAX_SAMPLES + 1, n)]


def weighted_mean(rows: Sequence[int], counts: Sequence[int], params: int) -> np.ndarray:
    total = np.zeros(params)
    for k in rows:
        total += counts[k] * update(k, params).astype(np.float64)
    return total / sum(counts[k] for k in rows)


class PeakRss:
    """The peak resident memory of this process while the block runs, sampled every 5 ms."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self.base = self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def extra_mb(self) -> float:
        return (self.peak - self.base) / 2**20


class Primitives:
    """Wraps the SecAgg+ primitives to time them, per phase (``begin``, ``protect``,
    ``aggregate``). Only this benchmark's process is affected; the wrappers are removed after."""

    TARGETS: tuple[tuple[Any, str, str], ...] = (
        (keys, "_pair_key", "X25519 + HKDF"),
        (protocol, "expand", "mask PRG"),
        (server, "expand", "mask PRG"),
        (protocol, "split", "Shamir split"),
        (server, "combine", "Shamir combine"),
        (fixed_point.FixedPoint, "encode", "fixed-point encode"),
    )

    def __init__(self) -> None:
        self.phase = ""
        self.seconds: dict[str, dict[str, float]] = {}
        self.calls: dict[str, dict[str, int]] = {}
        self._saved: list[tuple[Any, str, Any]] = []

    def _wrap(self, fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                s = self.seconds.setdefault(self.phase, {})
                s[name] = s.get(name, 0.0) + time.perf_counter() - t0
                c = self.calls.setdefault(self.phase, {})
                c[name] = c.get(name, 0) + 1

        return timed

    @contextmanager
    def installed(self) -> Iterator[Primitives]:
        for owner, attr, name in self.TARGETS:
            fn = owner.__dict__.get(attr)
            if fn is None:  # the code changed: time what is still there
                continue
            self._saved.append((owner, attr, fn))
            setattr(owner, attr, self._wrap(fn, name))
        try:
            yield self
        finally:
            for owner, attr, fn in reversed(self._saved):
                setattr(owner, attr, fn)
            self._saved.clear()


class TimedBackend:
    """An enclave backend that times each request it forwards."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds: dict[str, list[float]] = {}

    def _timed(self, op: str, *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return getattr(self.inner, op)(*args)
        finally:
            self.seconds.setdefault(op, []).append(time.perf_counter() - t0)

    @property
    def measurement(self) -> bytes:
        m: bytes = self.inner.measurement
        return m

    def attest(self, nonces: Sequence[bytes]) -> list[bytes]:
        out: list[bytes] = self._timed("attest", nonces)
        return out

    def public_material(self) -> bytes:
        out: bytes = self._timed("public_material")
        return out

    def aggregate(self, *args: Any) -> Any:
        return self._timed("aggregate", *args)

    def decrypt_sum(self, *args: Any) -> Any:
        return self._timed("decrypt_sum", *args)

    def close(self) -> None:
        self.inner.close()


def protect_all(
    mode: SecureAggregator, n: int, params: int, counts: list[int], label: str
) -> tuple[list[Submission], list[float], list[int]]:
    """Every device protects its update; per-device seconds and payload sizes."""
    subs, seconds, sizes = [], [], []
    step = max(1, n // 10)
    for k in range(n):
        x = update(k, params)
        t0 = time.perf_counter()
        payload = mode.protect(1, k, x)
        dt_k = time.perf_counter() - t0
        if payload is not None:
            seconds.append(dt_k)
            sizes.append(len(payload))
            subs.append(Submission(k, payload, counts[k]))
        if (k + 1) % step == 0 and n >= 200:
            print(f"  {label}: {k + 1}/{n} devices protected", flush=True)
    return subs, seconds, sizes


def wait_setup(mode: SecureAggregator) -> None:
    """Wait for ``begin_round``'s work. The modes run it in a background thread, which in a run
    overlaps training; here it is waited for, so that its time counts as set-up and not as the
    first device's protect. (Private hooks: SecAgg+'s ``_ready``, the attested modes'
    ``_join``.)"""
    for hook in ("_ready", "_join"):
        wait = getattr(mode, hook, None)
        if wait is not None:
            wait()


FIRST_PASS_ONLY = ("aggregate_extra_rss_mb",)
"""Taken from the first pass: later passes reuse heap that earlier, larger configurations
freed, so their RSS growth understates the need (the configurations run smallest first)."""


def median_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from the repeats of a configuration: the median of every number (recursively in
    nested tables), the rest and :data:`FIRST_PASS_ONLY` from the first."""
    out: dict[str, Any] = {}
    for key, first in rows[0].items():
        values = [r[key] for r in rows if key in r]
        if key in FIRST_PASS_ONLY:
            out[key] = first
        elif isinstance(first, dict):
            out[key] = median_rows(values)
        elif isinstance(first, bool):
            out[key] = first
        elif isinstance(first, int):
            out[key] = statistics.median_low(values)
        elif isinstance(first, float):
            out[key] = statistics.median(values)
        else:
            out[key] = first
    return out


def max_error(params: torch.Tensor, want: np.ndarray) -> float:
    return float(np.abs(params.detach().numpy().astype(np.float64) - want).max())


# ---- 1. secagg+ ---------------------------------------------------------------------------
def secagg_row(n: int, params: int, dropout: float) -> dict[str, Any]:
    label = f"secagg+ {n}x{params}"
    counts = sample_counts(n)
    ctx = context("secagg+", params, max(counts), f"security.secagg_dropout={dropout}")
    mode = SecAggMode(ctx)
    prims = Primitives()
    with prims.installed():
        print(f"  {label}: key set-up…", flush=True)
        prims.phase = "begin"
        t0 = time.perf_counter()
        mode.begin_round(1, list(range(n)), counts)
        wait_setup(mode)
        begin = time.perf_counter() - t0
        prims.phase = "protect"
        subs, seconds, sizes = protect_all(mode, n, params, counts, label)
        print(f"  {label}: aggregating {len(subs)} payloads…", flush=True)
        prims.phase = "aggregate"
        strategy = create_strategy(ctx.strategy)
        with PeakRss() as rss:
            t0 = time.perf_counter()
            out = mode.aggregate(1, torch.zeros(params, dtype=torch.float32), strategy, subs)
            aggregate = time.perf_counter() - t0
    survivors = [k for k in range(n) if k not in mode.dropped]
    setup_bytes = 64 + sum(len(b) for box in mode.inboxes.values() for b in box.values()) / n
    row = {
        "devices": n,
        "params": params,
        "neighbours": mode.config.k,
        "threshold": mode.config.threshold,
        "dropped": len(mode.dropped),
        "survivors": out.evidence["survivors"],
        "begin_round_s": begin,
        "setup_per_device_ms": 1000 * begin / n,
        "protect_per_device_ms": 1000 * statistics.median(seconds),
        "protect_total_s": sum(seconds),
        "payload_bytes": statistics.median(sizes),
        "setup_bytes_per_device": setup_bytes,
        "aggregate_s": aggregate,
        "aggregate_extra_rss_mb": rss.extra_mb,
        "round_total_s": begin + sum(seconds) + aggregate,
        "max_abs_error": max_error(out.params, weighted_mean(survivors, counts, params)),
        "clipped": out.evidence["clipped"],
        "primitives_s": prims.seconds,
        "primitive_calls": prims.calls,
    }
    print(
        f"{label}: set-up {row['setup_per_device_ms']:.2f} ms/device, protect "
        f"{row['protect_per_device_ms']:.2f} ms/device, aggregate {aggregate:.2f} s, "
        f"error {row['max_abs_error']:.1e}",
        flush=True,
    )
    return row


# ---- 2. ckks and 3. enclave ---------------------------------------------------------------
def attested_row(kind: str, n: int, params: int) -> dict[str, Any]:
    label = f"{kind} {n}x{params}"
    counts = sample_counts(n)
    ctx = context(kind, params, max(counts))
    t0 = time.perf_counter()
    mode: CkksMode | EnclaveMode = CkksMode(ctx) if kind == "ckks" else EnclaveMode(ctx)
    start = time.perf_counter() - t0
    backend = TimedBackend(mode.backend)
    mode.backend = backend
    try:
        t0 = time.perf_counter()
        mode.begin_round(1, list(range(n)), counts)
        wait_setup(mode)
        begin = time.perf_counter() - t0
        subs, seconds, sizes = protect_all(mode, n, params, counts, label)
        strategy = create_strategy(ctx.strategy)
        row: dict[str, Any] = {"devices": n, "params": params, "enclave_start_s": start}
        if isinstance(mode, CkksMode):
            t0 = time.perf_counter()
            total, _, _, _ = mode.summed(subs)
            row["ciphertext_sum_s"] = time.perf_counter() - t0
            row["sum_bytes"] = len(total)
        with PeakRss() as rss:
            t0 = time.perf_counter()
            out = mode.aggregate(1, torch.zeros(params, dtype=torch.float32), strategy, subs)
            aggregate = time.perf_counter() - t0
    finally:
        mode.close()
    row.update(
        {
            "attest_per_device_ms": 1000 * begin / n,
            "protect_per_device_ms": 1000 * statistics.median(seconds),
            "protect_total_s": sum(seconds),
            "payload_bytes": statistics.median(sizes),
            "plain_bytes": 4 * params,
            "expansion": statistics.median(sizes) / (4 * params),
            "aggregate_s": aggregate,
            "aggregate_extra_rss_mb": rss.extra_mb,
            "max_abs_error": max_error(out.params, weighted_mean(range(n), counts, params)),
            "accepted": len(out.accepted),
        }
    )
    if kind == "ckks":
        row["enclave_decrypt_s"] = backend.seconds["decrypt_sum"][-1]
    else:
        row["enclave_aggregate_s"] = backend.seconds["aggregate"][-1]
    # the transcript check attests the enclave once more for the host
    row["host_attest_s"] = backend.seconds["attest"][-1]
    print(
        f"{label}: {kind} protect {row['protect_per_device_ms']:.2f} ms/device, "
        f"{row['payload_bytes'] / 1e3:.0f} kB/device, aggregate {aggregate:.2f} s, "
        f"error {row['max_abs_error']:.1e}",
        flush=True,
    )
    return row


# ---- report -------------------------------------------------------------------------------
def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def markdown(res: dict[str, Any]) -> str:
    lines: list[str] = []
    if res["secagg"]:
        lines += [
            f"**secagg+**, {res['dropout']:.0%} dropouts (after key sharing), 32-bit ring, "
            "16-bit fixed point:",
            "",
            "| devices × params | k / t | key set-up per device (ms) | protect per device (ms) "
            "| payload per device | set-up upload per device | server aggregate (s) "
            "| aggregate extra RSS, first pass (MiB) | simulated round total (s) | max abs error |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in res["secagg"]:
            lines.append(
                f"| {r['devices']} × {r['params']:,} | {r['neighbours']} / {r['threshold']} "
                f"| {r['setup_per_device_ms']:.2f} | {r['protect_per_device_ms']:.2f} "
                f"| {r['payload_bytes'] / 1e3:.1f} kB | {r['setup_bytes_per_device'] / 1e3:.2f} kB "
                f"| {r['aggregate_s']:.3f} | {r['aggregate_extra_rss_mb']:.0f} "
                f"| {r['round_total_s']:.2f} | {r['max_abs_error']:.1e} |"
            )
        names = ["X25519 + HKDF", "mask PRG", "Shamir split", "Shamir combine"]
        names.append("fixed-point encode")
        lines += [
            "",
            "Where the secagg+ time goes (seconds for the whole round, all devices; "
            "calls in parentheses):",
            "",
            "| devices × params | phase | total | " + " | ".join(names) + " | rest |",
            "| --- | --- | ---: | " + " | ".join("---:" for _ in names) + " | ---: |",
        ]
        for r in res["secagg"]:
            totals = {
                "begin": r["begin_round_s"],
                "protect": r["protect_total_s"],
                "aggregate": r["aggregate_s"],
            }
            for phase, total in totals.items():
                sec = r["primitives_s"].get(phase, {})
                calls = r["primitive_calls"].get(phase, {})
                cells = [f"{sec[x]:.3f} ({calls[x]})" if x in sec else "—" for x in names]
                rest = total - sum(sec.values())
                lines.append(
                    f"| {r['devices']} × {r['params']:,} | {phase} | {total:.3f} | "
                    + " | ".join(cells)
                    + f" | {rest:.3f} |"
                )
    if res["ckks"]:
        lines += [
            "",
            "**ckks** (TenSEAL CKKS, N = 8192, 4096 slots per ciphertext, scale 2^40):",
            "",
            "| devices × params | attest per device (ms) | encrypt per device (ms) "
            "| payload per device | × plain f32 | ciphertext sum (s) | enclave decrypt (s) "
            "| whole aggregate (s) | max abs error |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in res["ckks"]:
            lines.append(
                f"| {r['devices']} × {r['params']:,} | {r['attest_per_device_ms']:.2f} "
                f"| {r['protect_per_device_ms']:.1f} | {r['payload_bytes'] / 1e6:.2f} MB "
                f"| ×{r['expansion']:.1f} | {r['ciphertext_sum_s']:.3f} "
                f"| {r['enclave_decrypt_s']:.3f} | {r['aggregate_s']:.3f} "
                f"| {r['max_abs_error']:.1e} |"
            )
    if res["enclave"]:
        lines += [
            "",
            "**enclave** (X25519 sealed boxes to the simulated enclave process):",
            "",
            "| devices × params | attest per device (ms) | seal per device (ms) "
            "| payload per device | enclave aggregate (s) | whole aggregate (s) "
            "| max abs error |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in res["enclave"]:
            lines.append(
                f"| {r['devices']} × {r['params']:,} | {r['attest_per_device_ms']:.2f} "
                f"| {r['protect_per_device_ms']:.3f} | {r['payload_bytes'] / 1e3:.1f} kB "
                f"| {r['enclave_aggregate_s']:.3f} | {r['aggregate_s']:.3f} "
                f"| {r['max_abs_error']:.1e} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--secagg",
        default=f"100x{W1_PARAMS},100x100000,500x100000,1000x100000",
        help="devices x params for secagg+ ('' to skip)",
    )
    ap.add_argument("--ckks", default=f"100x{W1_PARAMS},100x100000")
    ap.add_argument("--enclave", default=f"100x{W1_PARAMS},100x100000")
    ap.add_argument("--dropout", type=float, default=0.1, help="secagg+ dropout fraction")
    ap.add_argument(
        "--repeats", type=int, default=3, help="passes over all configurations (medians)"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    res: dict[str, Any] = {
        "command": ("python benchmarks/secure_scaling.py " + " ".join(sys.argv[1:])).strip(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code": code_state(),
        "dropout": args.dropout,
        "secagg": [],
        "ckks": [],
        "enclave": [],
    }
    jobs: list[tuple[str, int, int]] = [
        *(("secagg", n, p) for n, p in parse_spec(args.secagg)),
        *(("ckks", n, p) for n, p in parse_spec(args.ckks)),
        *(("enclave", n, p) for n, p in parse_spec(args.enclave)),
    ]
    raw: dict[tuple[str, int, int], list[dict[str, Any]]] = {job: [] for job in jobs}
    for rep in range(args.repeats):
        print(f"repeat {rep + 1}/{args.repeats}", flush=True)
        for job in jobs:
            kind, n, p = job
            row = secagg_row(n, p, args.dropout) if kind == "secagg" else attested_row(kind, n, p)
            raw[job].append(row)
    for (kind, _, _), rows in raw.items():
        merged = median_rows(rows)
        merged["repeats"] = len(rows)
        merged["per_repeat"] = rows
        res[kind].append(merged)
    res["repeats"] = args.repeats
    table = markdown(res)
    code = res["code"]
    res["code_after"] = code_state()
    note = f"Code: commit {code['commit']}, src diff {code['src_diff_sha256']}.\n\n"
    if res["code_after"] != code:
        note += "**The code under src/ changed during the measurement.**\n\n"
        print("warning: the code under src/ changed during the measurement", file=sys.stderr)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "secure_scaling.json").write_text(json.dumps(res, indent=1))
    (RESULTS / "secure_scaling.md").write_text(f"```bash\n{res['command']}\n```\n\n{note}{table}")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
