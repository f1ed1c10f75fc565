"""``fedledger report RUN_DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedledger.cli.common import console, friendly_errors
from fedledger.report import write_report

__all__ = ["report"]


@friendly_errors
def report(run_dir: Annotated[Path, typer.Argument(help="a run folder")]) -> None:
    """(Re)write RUN_DIR/report.md and its plots from the run's files."""
    path = write_report(run_dir)
    console.print(f"report: {path}", highlight=False)
