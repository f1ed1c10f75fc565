"""The matrix's files: ``matrix.csv``, ``matrix.md`` (means ± std over seeds), ``heatmap.png``."""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedledger.matrix.cell import CellResult
from fedledger.matrix.spec import ATTACK_FREE, _fraction_text
from fedledger.report._markdown import MISSING, code, table
from fedledger.report.matrix_plot import HeatmapPanel, plot_matrix_heatmap

__all__ = [
    "CSV_COLUMNS",
    "MatrixFiles",
    "accuracy_table",
    "matrix_csv",
    "matrix_markdown",
    "write_matrix",
]

#: Columns of ``matrix.csv``, in order.
CSV_COLUMNS = (
    "defence",
    "attack",
    "fraction",
    "seed",
    "accuracy",
    "macro_f1",
    "backdoor_success",
    "backdoor_baseline",
    "detection_precision",
    "detection_recall",
    "detection_f1",
    "seconds",
    "run_dir",
    "error",
)


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
                _csv_value(r.backdoor_baseline),
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
            "backdoor_baseline",
            "Backdoor success on the attack-free model",
            3,
            "The same trigger on the final model of the same defence and seed without an "
            "attack: what a backdoor that planted nothing scores (a trigger can look like "
            "the target class to a model that never saw it).",
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
        attacked = key in ("backdoor_success", "backdoor_baseline", "detection_f1")
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
