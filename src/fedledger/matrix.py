"""The attack × defence matrix: one ordinary run per cell, in parallel, and the tables.

A :class:`MatrixSpec` names the defences (``strategy.name``), the attacks (``attack.name``, with
``none`` as the attack-free baseline), the malicious fractions and the number of seeds. Every
cell — defence × attack × fraction × seed — is a normal run in its own run folder under
``DIR/cells/`` (same report; auditable when the ledger is on), run by :func:`run_cell` in a
worker process. :func:`write_matrix` then writes ``matrix.csv`` (one row per cell),
``matrix.md`` (means ± standard deviations over seeds) and ``heatmap.png``.

Examples
--------
>>> spec = MatrixSpec.parse(None, ["ledger.backend=none"], attacks="none,sign_flip",
...                         defences="fedavg,median", fractions="0.2")  # doctest: +SKIP
>>> results = run_matrix(spec, Path("runs/matrix"), jobs=2)  # doctest: +SKIP
>>> write_matrix(results, Path("runs/matrix")).markdown  # doctest: +SKIP
PosixPath('runs/matrix/matrix.md')
"""

from __future__ import annotations

import csv
import io
import json
import math
import multiprocessing
import os
import signal
import statistics
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed, wait
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from fedledger.assemble import _check_names, prepare_run
from fedledger.attacks import ATTACKS
from fedledger.config import Config, load_config
from fedledger.errors import CheckpointError, ConfigError, FedledgerError
from fedledger.report import write_report
from fedledger.report._markdown import MISSING, code, table
from fedledger.report.matrix_plot import HeatmapPanel, plot_matrix_heatmap
from fedledger.strategies import STRATEGIES

__all__ = [
    "ATTACK_FREE",
    "CELLS_DIR",
    "CSV_COLUMNS",
    "INTERRUPTED",
    "Cell",
    "CellResult",
    "MatrixFiles",
    "MatrixSpec",
    "accuracy_table",
    "check_out",
    "matrix_csv",
    "matrix_markdown",
    "run_cell",
    "run_matrix",
    "write_matrix",
]

#: The attack name of the attack-free baseline (run once per defence and seed, fraction 0).
ATTACK_FREE = "none"

#: Columns of ``matrix.csv``, in order.
CSV_COLUMNS = (
    "defence",
    "attack",
    "fraction",
    "seed",
    "accuracy",
    "macro_f1",
    "backdoor_success",
    "detection_precision",
    "detection_recall",
    "detection_f1",
    "seconds",
    "run_dir",
    "error",
)

#: ``--set`` keys the matrix sets itself, per cell, and the option that does.
_CELL_KEYS = {
    "strategy.name": "--defences",
    "attack.name": "--attacks",
    "attack.fraction": "--fractions",
}
#: The folder of the matrix that holds the run folders, one per cell.
CELLS_DIR = "cells"
#: The error of a cell stopped by Ctrl-C.
INTERRUPTED = "interrupted"


# ---- the grid ------------------------------------------------------------------------------
def _fraction_text(fraction: float) -> str:
    """``0.3`` -> ``"0.3"``, ``0.0`` -> ``"0"`` (folder names and labels)."""
    return f"{fraction:g}"


@dataclass(frozen=True)
class Cell:
    """One run of the matrix.

    Attributes
    ----------
    defence
        ``strategy.name``.
    attack
        ``attack.name`` (``none`` for the baseline).
    fraction
        ``attack.fraction`` (0 for the baseline).
    seed
        ``train.seed`` of the run (the config's seed plus the seed index).
    """

    defence: str
    attack: str
    fraction: float
    seed: int

    @property
    def name(self) -> str:
        """The run folder's name: ``<defence>__<attack>__<fraction>__s<seed>``."""
        return f"{self.defence}__{self.attack}__{_fraction_text(self.fraction)}__s{self.seed}"

    @property
    def row_label(self) -> str:
        """The table/heatmap row: ``attack@fraction``, or ``none`` for the baseline."""
        if self.attack == ATTACK_FREE:
            return ATTACK_FREE
        return f"{self.attack}@{_fraction_text(self.fraction)}"

    def overrides(self) -> list[str]:
        """The ``--set`` overrides that make a run this cell."""
        return [
            f"strategy.name={json.dumps(self.defence)}",
            f"attack.name={json.dumps(self.attack)}",
            f"attack.fraction={self.fraction!r}",
            f"train.seed={self.seed}",
        ]


def _split(text: str, option: str, what: str) -> list[str]:
    """Comma-separated items, stripped, duplicates dropped (first one kept)."""
    items = list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
    if not items:
        raise ConfigError(option, f"no {what} given (a comma-separated list)")
    return items


def _names(text: str, option: str, what: str, known: Iterable[str]) -> tuple[str, ...]:
    names = _split(text, option, what)
    registry = sorted(known)
    for name in names:
        if name not in registry:
            raise ConfigError(option, f"unknown {what} {name!r}; known: {', '.join(registry)}")
    return tuple(names)


def _fractions(text: str) -> tuple[float, ...]:
    values: list[float] = []
    for item in _split(text, "--fractions", "fraction"):
        try:
            value = float(item)
        except ValueError:
            raise ConfigError("--fractions", f"{item!r} is not a number") from None
        if not 0.0 < value < 1.0:  # also refuses nan
            raise ConfigError("--fractions", f"{item} is outside (0, 1)")
        if value not in values:
            values.append(value)
    return tuple(values)


@dataclass(frozen=True)
class MatrixSpec:
    """What to run: the base config and the grid.

    Build it with :meth:`parse`, which validates every name, fraction and cell config.

    Attributes
    ----------
    config
        The TOML config (``None`` for the offline default).
    overrides
        ``--set`` overrides applied to every cell.
    defences
        ``strategy.name`` values, in order.
    attacks
        ``attack.name`` values, in order; ``none`` is the attack-free baseline.
    fractions
        ``attack.fraction`` values in (0, 1), in order.
    seeds
        Seeds per cell: ``train.seed`` runs over ``base_seed .. base_seed + seeds - 1``.
    base_seed
        ``train.seed`` of the base config.
    """

    config: Path | None
    overrides: tuple[str, ...]
    defences: tuple[str, ...]
    attacks: tuple[str, ...]
    fractions: tuple[float, ...]
    seeds: int = 1
    base_seed: int = 0

    @classmethod
    def parse(
        cls,
        config: Path | None,
        overrides: Sequence[str],
        *,
        attacks: str,
        defences: str,
        fractions: str,
        seeds: int = 1,
    ) -> MatrixSpec:
        """Validate the command's options and every cell's config; nothing is written.

        Parameters
        ----------
        config
            TOML config, or ``None`` for the defaults.
        overrides
            ``--set`` overrides (``strategy.name``, ``attack.name`` and ``attack.fraction``
            are the matrix's own and refused here; ``train.seed`` sets the first seed).
        attacks, defences, fractions
            Comma-separated lists.
        seeds
            Number of seeds, at least 1.

        Raises
        ------
        ConfigError
            An unknown name, an empty list, a fraction outside (0, 1), fewer than one seed, an
            override of a key the matrix sets, or an invalid config.
        """
        attack_names = _names(attacks, "--attacks", "attack", [ATTACK_FREE, *ATTACKS])
        defence_names = _names(defences, "--defences", "defence", STRATEGIES)
        values = _fractions(fractions)
        if seeds < 1:
            raise ConfigError("--seeds", f"must be at least 1 (got {seeds})")
        for item in overrides:
            key = item.partition("=")[0].strip()
            if key in _CELL_KEYS:
                raise ConfigError(key, f"is set per cell by {_CELL_KEYS[key]}; drop the --set")
        base = load_config(config, list(overrides))
        spec = cls(
            config=config,
            overrides=tuple(overrides),
            defences=defence_names,
            attacks=attack_names,
            fractions=values,
            seeds=seeds,
            base_seed=base.train.seed,
        )
        for cfg in spec.configs().values():
            _check_names(cfg)
        return spec

    def cells(self) -> list[Cell]:
        """Every cell, defence-major: defence × attack × fraction × seed (the baseline once
        per defence and seed, with fraction 0)."""
        out: list[Cell] = []
        for defence in self.defences:
            for attack in self.attacks:
                fractions = (0.0,) if attack == ATTACK_FREE else self.fractions
                for fraction in fractions:
                    for s in range(self.seeds):
                        out.append(Cell(defence, attack, fraction, self.base_seed + s))
        return out

    def config_for(self, cell: Cell) -> Config:
        """The validated config of ``cell``: the base config, ``--set``, then the cell's keys."""
        return load_config(self.config, [*self.overrides, *cell.overrides()])

    def configs(self) -> dict[Cell, Config]:
        """Every cell's config, in grid order (raises :class:`ConfigError` on the first bad one)."""
        return {cell: self.config_for(cell) for cell in self.cells()}


# ---- one cell --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CellResult:
    """The outcome of one cell: its final metrics, or the error that stopped it.

    Attributes
    ----------
    cell
        Which run.
    accuracy, macro_f1
        Final-round metrics (``None`` when the run failed).
    backdoor_success
        Final-round backdoor success rate, when the attack reports one.
    detection_precision, detection_recall, detection_f1
        Device-level detection of the malicious devices, when the strategy screens or selects
        updates and an attack ran.
    seconds
        Training time of the run (``summary.json``'s ``seconds_total``).
    run_dir
        The run folder, relative to the matrix folder (empty if it was never created).
    error
        First line of the error, empty when the run finished.
    """

    cell: Cell
    accuracy: float | None = None
    macro_f1: float | None = None
    backdoor_success: float | None = None
    detection_precision: float | None = None
    detection_recall: float | None = None
    detection_f1: float | None = None
    seconds: float | None = None
    run_dir: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        """Whether the run finished."""
        return not self.error

    def metric(self, key: str) -> float | None:
        """The value of a numeric field by name (``"accuracy"``, ``"detection_f1"``, …)."""
        value = getattr(self, key)
        return value if isinstance(value, float) else None


def _number(value: Any) -> float | None:
    """A finite float from a JSON value, else ``None``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    if isinstance(exc, FedledgerError | OSError):
        return message or type(exc).__name__
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _relative(folder: Path, root: Path) -> str:
    if not folder.exists():
        return ""
    try:
        return folder.relative_to(root).as_posix()
    except ValueError:
        return str(folder)


def run_cell(config: Config, cell: Cell, root: Path) -> CellResult:
    """Run one cell into ``root/cells/<cell.name>/`` and write its report.

    Parameters
    ----------
    config
        The cell's config (:meth:`MatrixSpec.config_for`).
    cell
        The cell, for its name and its row.
    root
        The matrix folder.

    Returns
    -------
    CellResult
        The final metrics, or the first line of the error: an exception does not escape (a
        ``KeyboardInterrupt`` does).
    """
    folder = root / CELLS_DIR / cell.name
    try:
        runner, _ = prepare_run(config, folder)
        summary = runner.run()
        write_report(folder)
    except Exception as exc:
        return CellResult(cell, run_dir=_relative(folder, root), error=_first_line(exc))
    final = summary.get("final", {})
    detection = summary.get("detection", {})
    return CellResult(
        cell,
        accuracy=_number(final.get("accuracy")),
        macro_f1=_number(final.get("macro_f1")),
        backdoor_success=_number(final.get("backdoor_success")),
        detection_precision=_number(detection.get("precision")),
        detection_recall=_number(detection.get("recall")),
        detection_f1=_number(detection.get("f1")),
        seconds=_number(summary.get("seconds_total")),
        run_dir=_relative(folder, root),
    )


# ---- the pool --------------------------------------------------------------------------------
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
    return sorted(results.values(), key=lambda r: order[r.cell])


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


# ---- tables ----------------------------------------------------------------------------------
def _csv_value(value: float | None, digits: int = 6) -> str:
    return "" if value is None else repr(round(value, digits))


def matrix_csv(results: Sequence[CellResult]) -> str:
    """``matrix.csv``: a header (:data:`CSV_COLUMNS`) and one row per cell; an empty field
    where a metric does not apply or the run failed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in results:
        writer.writerow(
            [
                r.cell.defence,
                r.cell.attack,
                _fraction_text(r.cell.fraction),
                r.cell.seed,
                _csv_value(r.accuracy),
                _csv_value(r.macro_f1),
                _csv_value(r.backdoor_success),
                _csv_value(r.detection_precision),
                _csv_value(r.detection_recall),
                _csv_value(r.detection_f1),
                _csv_value(r.seconds, 3),
                r.run_dir,
                r.error,
            ]
        )
    return buffer.getvalue()


@dataclass(frozen=True)
class _Grid:
    """The results arranged for tables: rows (attack, fraction), columns (defences), seeds."""

    rows: list[tuple[str, float]]
    labels: list[str]
    defences: list[str]
    seeds: int
    cells: dict[tuple[str, str, float], list[CellResult]]

    @classmethod
    def of(cls, results: Sequence[CellResult]) -> _Grid:
        rows: dict[tuple[str, float], str] = {}
        defences: dict[str, None] = {}
        seeds: set[int] = set()
        cells: dict[tuple[str, str, float], list[CellResult]] = {}
        for r in results:
            c = r.cell
            rows.setdefault((c.attack, c.fraction), c.row_label)
            defences.setdefault(c.defence)
            seeds.add(c.seed)
            cells.setdefault((c.defence, c.attack, c.fraction), []).append(r)
        keys = sorted(rows, key=lambda k: k[0] != ATTACK_FREE)  # the baseline first (stable)
        return cls(keys, [rows[k] for k in keys], list(defences), len(seeds), cells)

    def values(self, defence: str, row: tuple[str, float], key: str) -> list[float]:
        """The metric ``key`` of every finished seed of one cell."""
        found = (r.metric(key) for r in self.cells.get((defence, *row), []))
        return [v for v in found if v is not None]

    def has(self, key: str) -> bool:
        return any(r.metric(key) is not None for rs in self.cells.values() for r in rs)

    @property
    def baseline(self) -> tuple[str, float] | None:
        return next((row for row in self.rows if row[0] == ATTACK_FREE), None)

    def drops(self, defence: str, row: tuple[str, float]) -> list[float]:
        """Baseline accuracy minus accuracy under attack, paired by seed."""
        if self.baseline is None:
            return []
        clean = {
            r.cell.seed: r.accuracy
            for r in self.cells.get((defence, *self.baseline), [])
            if r.accuracy is not None
        }
        return [
            clean[r.cell.seed] - r.accuracy
            for r in self.cells.get((defence, *row), [])
            if r.accuracy is not None and r.cell.seed in clean
        ]


def _aggregate(values: list[float], expected: int, digits: int) -> str:
    """``mean``, ``mean ± std`` (sample std, over more than one seed), with ``(n=k)`` when some
    seeds failed, or a dash when none finished."""
    if not values:
        return MISSING
    text = f"{statistics.fmean(values):.{digits}f}"
    if len(values) > 1:
        text += f" ± {statistics.stdev(values):.{digits}f}"
    if len(values) < expected:
        text += f" (n={len(values)})"
    return text


def _metric_table(
    grid: _Grid,
    values: Callable[[str, tuple[str, float]], list[float]],
    digits: int = 3,
    *,
    skip_baseline: bool = False,
) -> list[str]:
    """One Markdown table: a row per attack@fraction, a column per defence, each cell the
    :func:`_aggregate` of ``values(defence, row)``."""
    body = [
        [label, *(_aggregate(values(d, row), grid.seeds, digits) for d in grid.defences)]
        for row, label in zip(grid.rows, grid.labels, strict=True)
        if not (skip_baseline and row == grid.baseline)
    ]
    return table(["attack@fraction", *grid.defences], body)


def _metric(grid: _Grid, key: str) -> Callable[[str, tuple[str, float]], list[float]]:
    """``values(defence, row)`` of the metric ``key``."""

    def values(defence: str, row: tuple[str, float]) -> list[float]:
        return grid.values(defence, row, key)

    return values


def accuracy_table(results: Sequence[CellResult]) -> list[str]:
    """The final-accuracy table of ``matrix.md`` (rows attack@fraction, a column per defence),
    as Markdown lines."""
    grid = _Grid.of(results)
    return _metric_table(grid, _metric(grid, "accuracy"))


def matrix_markdown(results: Sequence[CellResult], context: Sequence[str] = ()) -> str:
    """``matrix.md``: one table per metric, aggregated over seeds.

    Parameters
    ----------
    results
        One row per cell, in grid order.
    context
        Extra lines (Markdown) under the title, e.g. the config and the overrides.

    Returns
    -------
    str
        Tables of final accuracy, accuracy drop against the same defence's attack-free baseline
        (when ``none`` ran), macro-F1, backdoor success (when a backdoor ran), detection F1
        (when any strategy screened), seconds, and the failed cells.
    """
    grid = _Grid.of(results)
    seeds = sorted({r.cell.seed for r in results})
    seed_text = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}" if seeds else "-"
    fractions = sorted({r.cell.fraction for r in results if r.cell.attack != ATTACK_FREE})
    attacks = list(dict.fromkeys(r.cell.attack for r in results))
    lines = [
        "# Attack × defence matrix",
        "",
        f"{len(results)} runs: defences {', '.join(code(d) for d in grid.defences)}; "
        f"attacks {', '.join(code(a) for a in attacks)}; "
        f"malicious fractions {', '.join(_fraction_text(f) for f in fractions) or MISSING}; "
        f"{grid.seeds} seed{'s' if grid.seeds != 1 else ''} (`train.seed` {seed_text}).",
        "",
        *context,
        *([""] if context else []),
        "Each value is the final round's, "
        + (
            "the mean over seeds ± the sample standard deviation"
            if grid.seeds > 1
            else "from one seed"
        )
        + f"; {MISSING} marks a run that failed or a metric that does not apply, and (n=k) a "
        "cell where only k seeds finished. Rows are `attack@fraction`; `none` is the "
        "attack-free baseline. Every run has its own folder and report under `cells/`; "
        "`matrix.csv` has one row per run.",
        "",
        "## Final accuracy",
        "",
        *accuracy_table(results),
        "",
    ]
    if grid.baseline is not None and len(grid.rows) > 1:
        lines += [
            "## Accuracy drop against the attack-free baseline",
            "",
            "Baseline accuracy minus accuracy under attack, for the same defence and seed "
            "(higher = the attack hurt more).",
            "",
            *_metric_table(grid, grid.drops, skip_baseline=True),
            "",
        ]
    sections = [
        ("macro_f1", "Macro-F1", 3, ""),
        (
            "backdoor_success",
            "Backdoor success",
            3,
            "Share of triggered test samples classified as the backdoor's target.",
        ),
        (
            "detection_f1",
            "Detection F1",
            3,
            "Device-level F1 of the malicious devices the strategy excluded (a device counts "
            "as detected when it was flagged in more than half of its attack rounds).",
        ),
        ("seconds", "Seconds", 2, "Training time of each run (`seconds_total`)."),
    ]
    for key, title, digits, note in sections:
        if key != "seconds" and not grid.has(key):
            continue
        lines += [f"## {title}", ""]
        if note:
            lines += [note, ""]
        attacked = key in ("backdoor_success", "detection_f1")  # n/a without an attack
        lines += [*_metric_table(grid, _metric(grid, key), digits, skip_baseline=attacked), ""]
    failed = [r for r in results if not r.ok]
    if failed:
        lines += [
            "## Failed runs",
            "",
            *table(
                ["run", "error"],
                [[r.run_dir or r.cell.name, r.error] for r in failed],
                align="ll",
            ),
            "",
        ]
    return "\n".join(lines)


# ---- files -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MatrixFiles:
    """The files :func:`write_matrix` wrote."""

    csv: Path
    markdown: Path
    heatmap: Path


def _panel(grid: _Grid, key: str, title: str, cmap: str) -> HeatmapPanel:
    shape = (len(grid.rows), len(grid.defences))
    means = np.full(shape, np.nan)
    spread = np.full(shape, np.nan)
    for i, row in enumerate(grid.rows):
        for j, defence in enumerate(grid.defences):
            values = grid.values(defence, row, key)
            if values:
                means[i, j] = statistics.fmean(values)
            if len(values) > 1:
                spread[i, j] = statistics.stdev(values)
    return HeatmapPanel(
        title=title,
        values=means,
        spread=spread if grid.seeds > 1 else None,
        colour_label=title.lower(),
        cmap=cmap,
    )


def write_matrix(
    results: Sequence[CellResult], out: Path, context: Sequence[str] = ()
) -> MatrixFiles:
    """Write ``matrix.csv``, ``matrix.md`` and ``heatmap.png`` into ``out``.

    Parameters
    ----------
    results
        One row per cell, in grid order (at least one).
    out
        The matrix folder.
    context
        Extra Markdown lines for the top of ``matrix.md``.

    Returns
    -------
    MatrixFiles
        The three paths.
    """
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "matrix.csv"
    csv_path.write_text(matrix_csv(results), encoding="utf-8")
    md_path = out / "matrix.md"
    md_path.write_text(matrix_markdown(results, context), encoding="utf-8")
    grid = _Grid.of(results)
    panels = [_panel(grid, "accuracy", "Final accuracy", "viridis")]
    if grid.has("backdoor_success"):
        panels.append(_panel(grid, "backdoor_success", "Backdoor success", "Reds"))
    seeds = f" (mean of {grid.seeds} seeds)" if grid.seeds > 1 else ""
    heatmap = plot_matrix_heatmap(
        grid.labels,
        grid.defences,
        panels,
        out / "heatmap.png",
        title=f"Attack × defence matrix{seeds}",
    )
    return MatrixFiles(csv=csv_path, markdown=md_path, heatmap=heatmap)
