"""The matrix's process pool: :func:`run_matrix` runs every cell in ``spawn`` workers.

A worker runs :func:`_worker_cell` (module level here, so that a spawned interpreter imports it
by this module's path); the parent's stop flag skips queued cells on Ctrl-C.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed, wait
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

from fedledger.config import Config
from fedledger.errors import CheckpointError, ConfigError
from fedledger.matrix.cell import CELLS_DIR, CellResult, _first_line, _relative, run_cell
from fedledger.matrix.spec import Cell, MatrixSpec
from fedledger.matrix.trigger_baseline import with_trigger_baselines

__all__ = ["INTERRUPTED", "check_out", "run_matrix"]

#: The error of a cell stopped by Ctrl-C.
INTERRUPTED = "interrupted"


#: In a worker: the parent's stop flag, a lock-free shared byte (a lock could be left held by
#: an interrupt) that the parent sets on Ctrl-C so that queued cells are skipped.
_STOP: Any = None


def _worker_init(stop: Any) -> None:
    """Keep the parent's stop flag; ignore Ctrl-C while idle (the parent decides)."""
    global _STOP
    _STOP = stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Stop the running cell once; further SIGINTs are ignored so its clean-up can finish."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _worker_cell(config: Config, cell: Cell, root: Path) -> CellResult | None:
    """:func:`run_cell` in a worker, interruptible while it runs; ``None`` when the matrix was
    stopped before the cell started.

    The handler is installed before the stop flag is read and the parent sets the flag before
    it signals, so a cell either sees the flag or gets the interrupt.
    """
    started = False
    signal.signal(signal.SIGINT, _interrupt)
    try:
        if _STOP is not None and _STOP.value:
            return None
        started = True
        return run_cell(config, cell, root)
    except KeyboardInterrupt:
        if not started:  # a second SIGINT meant for the cell before
            return None
        folder = root / CELLS_DIR / cell.name
        return CellResult(cell, run_dir=_relative(folder, root), error=INTERRUPTED)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore Ctrl-C while worker processes are started: a spawned interpreter keeps an ignored
    SIGINT ignored, so a Ctrl-C cannot kill a worker halfway through its imports."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:  # None: a handler not set from Python, which cannot be put back; use the default
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that is a file or a non-empty folder (as ``fedledger run`` does).

    Raises
    ------
    CheckpointError
        ``out`` is a file, or a folder that is not empty.
    """
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise CheckpointError(f"--out {out} is not empty; choose a new folder for the matrix")


def run_matrix(
    spec: MatrixSpec,
    out: Path,
    jobs: int,
    on_result: Callable[[CellResult], None] | None = None,
) -> list[CellResult]:
    """Run every cell of ``spec`` in ``jobs`` worker processes (``spawn``) under ``out``.

    Parameters
    ----------
    spec
        The grid.
    out
        The matrix folder: new or empty; created here.
    jobs
        Worker processes (at most one per cell is started).
    on_result
        Called in this process as each cell finishes, in completion order.

    Returns
    -------
    list of CellResult
        One per cell, in grid order. A failed cell has its error; the others still run.
        Backdoor cells carry the trigger's success on their defence's attack-free model
        (:func:`~fedledger.matrix.trigger_baseline.with_trigger_baselines`).

    Raises
    ------
    ConfigError
        ``jobs`` is below 1, or a cell's config is invalid (before anything is written).
    CheckpointError
        ``out`` is a file or a non-empty folder.
    KeyboardInterrupt
        On Ctrl-C: cells that had not started are dropped, running ones are interrupted (their
        rows, with error ``interrupted``, still reach ``on_result``), the workers exit, and the
        interrupt is raised again. A second Ctrl-C terminates the workers at once.
    """
    if jobs < 1:
        raise ConfigError("--jobs", f"must be at least 1 (got {jobs})")
    configs = spec.configs()
    check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    order = {cell: i for i, cell in enumerate(configs)}
    results: dict[Cell, CellResult] = {}
    futures: dict[Future[CellResult | None], Cell] = {}

    def record(future: Future[CellResult | None]) -> None:
        cell = futures[future]
        result = _outcome(future, cell)
        if result is not None and cell not in results:
            results[cell] = result
            if on_result is not None:
                on_result(result)

    context = multiprocessing.get_context("spawn")
    stop = context.RawValue("b", 0)
    before = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(configs)),
        mp_context=context,
        initializer=_worker_init,
        initargs=(stop,),
    )
    try:
        with _sigint_ignored():
            for cell, cfg in configs.items():
                futures[pool.submit(_worker_cell, cfg, cell, out)] = cell
        for future in as_completed(futures):
            record(future)
    except BaseException as exc:
        workers = set(multiprocessing.active_children()) - before
        started = _stop_pool(pool, list(futures), stop, workers)
        if isinstance(exc, KeyboardInterrupt):
            for future in started:
                record(future)
        raise
    pool.shutdown(wait=True)
    done = sorted(results.values(), key=lambda r: order[r.cell])
    return with_trigger_baselines(done, configs, out)


def _stop_pool(
    pool: ProcessPoolExecutor,
    futures: list[Future[CellResult | None]],
    stop: Any,
    workers: set[BaseProcess],
) -> list[Future[CellResult | None]]:
    """Stop the matrix: skip the cells not started, interrupt the running ones, wait for them
    and end the workers; return the futures of the cells that had started.

    Queued futures are cancelled here, not by ``shutdown(cancel_futures=True)``: the executor
    never notifies those it cancels itself, and :func:`~concurrent.futures.wait` would hang on
    them. Once the started cells are done, what is left of a worker is idle (or still
    importing), so it is terminated rather than waited for; a second Ctrl-C while the cells
    clean up terminates the workers at once.
    """
    stop.value = 1  # before the signal: a cell either sees the flag or gets the interrupt
    for future in futures:
        future.cancel()
    started = [future for future in futures if not future.cancelled()]
    pool.shutdown(wait=False)
    for child in workers:
        if child.pid is not None and child.is_alive():
            os.kill(child.pid, signal.SIGINT)
    try:
        wait(started)
    finally:
        for child in workers:
            child.terminate()
            child.join()
    return started


def _outcome(future: Future[CellResult | None], cell: Cell) -> CellResult | None:
    """The future's result, or an error row when its worker died or was interrupted."""
    try:
        return future.result()
    except KeyboardInterrupt:
        return CellResult(cell, error=INTERRUPTED)
    except BaseException as exc:  # BrokenProcessPool (a worker was killed: out of memory, …)
        return CellResult(cell, error=f"worker process failed: {_first_line(exc)}")
