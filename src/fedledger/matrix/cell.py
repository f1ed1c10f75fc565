"""One cell of the matrix: :func:`run_cell` runs it as an ordinary run; :class:`CellResult`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedledger.assemble import prepare_run
from fedledger.config import Config
from fedledger.errors import FedledgerError
from fedledger.matrix.spec import Cell
from fedledger.report import write_report

__all__ = ["CELLS_DIR", "CellResult", "run_cell"]

#: The folder of the matrix that holds the run folders, one per cell.
CELLS_DIR = "cells"


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
    backdoor_baseline
        The same trigger's success on the final model of the same defence and seed without an
        attack, when the matrix ran that too (filled in after the runs by
        :func:`~fedledger.matrix.trigger_baseline.with_trigger_baselines`).
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
    backdoor_baseline: float | None = None
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
