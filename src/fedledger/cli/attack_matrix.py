"""``fedledger attack-matrix``: every defence against every attack, in parallel runs."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from fedledger.cli.common import console, err_console, friendly_errors
from fedledger.errors import ConfigError
from fedledger.matrix import (
    CELLS_DIR,
    INTERRUPTED,
    CellResult,
    MatrixSpec,
    accuracy_table,
    check_out,
    run_matrix,
    write_matrix,
)

__all__ = ["attack_matrix"]


def _new_matrix_dir() -> Path:
    base = Path("runs") / datetime.now().strftime("matrix-%Y%m%d-%H%M%S")
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _count(n: int, noun: str) -> str:
    """``1 run``, ``4 runs``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _line(result: CellResult) -> str:
    """One console line for a finished cell."""
    c = result.cell
    where = escape(f"{c.defence} vs {c.row_label} seed {c.seed}")
    if not result.ok:
        return f"[red]✗[/] {where}: [red]{escape(result.error)}[/]"
    parts = [f"accuracy {result.accuracy:.4f}" if result.accuracy is not None else "accuracy -"]
    if result.macro_f1 is not None:
        parts.append(f"macro-F1 {result.macro_f1:.4f}")
    if result.backdoor_success is not None:
        parts.append(f"backdoor {result.backdoor_success:.4f}")
    if result.detection_f1 is not None:
        parts.append(f"detection F1 {result.detection_f1:.4f}")
    if result.seconds is not None:
        parts.append(f"{result.seconds:.2f} s")
    return f"[green]✓[/] {where}: {', '.join(parts)}"


def _context(config: Path | None, overrides: list[str]) -> list[str]:
    """Lines for the top of ``matrix.md``: the base config and the overrides."""
    base = f"`{config}`" if config is not None else "the offline default"
    sets = ", ".join(f"`{item}`" for item in overrides)
    return [f"Base config: {base}" + (f", with {sets}." if sets else ".")]


@friendly_errors
def attack_matrix(
    attacks: Annotated[
        str,
        typer.Option(
            "--attacks",
            help="attack.name values, comma-separated; `none` = the attack-free baseline",
        ),
    ],
    defences: Annotated[
        str,
        typer.Option(
            "--defences",
            help="strategy.name values, comma-separated; `honest_only` = FedAvg with the "
            "malicious devices sitting out (a reference: a defence that finds exactly them)",
        ),
    ],
    fractions: Annotated[
        str,
        typer.Option("--fractions", help="malicious fractions in (0, 1), comma-separated"),
    ],
    config: Annotated[
        Path | None, typer.Argument(help="TOML config; omit for the offline default")
    ] = None,
    seeds: Annotated[int, typer.Option(help="seeds per cell: train.seed, train.seed + 1, …")] = 1,
    jobs: Annotated[
        int | None, typer.Option(help="parallel worker processes (default: the CPU count)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="matrix folder (default runs/matrix-<timestamp>)")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="override a key in every run: section.key=value (repeatable)"),
    ] = None,
) -> None:
    """Run every defence against every attack, fraction and seed, one run folder each.

    Writes matrix.csv (one row per run), matrix.md (tables over seeds) and heatmap.png.
    """
    overrides = list(set_ or [])
    spec = MatrixSpec.parse(
        config, overrides, attacks=attacks, defences=defences, fractions=fractions, seeds=seeds
    )
    cells = spec.cells()
    workers = jobs if jobs is not None else os.cpu_count() or 1
    if workers < 1:
        raise ConfigError("--jobs", f"must be at least 1 (got {workers})")
    path = out or _new_matrix_dir()
    check_out(path)
    settings = len(cells) // (len(spec.defences) * spec.seeds)
    console.print(
        f"[bold]attack matrix[/]: {_count(len(spec.defences), 'defence')} × "
        f"{_count(settings, 'attack setting')} × {_count(spec.seeds, 'seed')} = "
        f"{_count(len(cells), 'run')}, {_count(min(workers, len(cells)), 'worker')} → {path}",
        highlight=False,
        soft_wrap=True,
    )
    partial: list[CellResult] = []
    progress = Progress(
        TextColumn("[bold]runs"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    task = progress.add_task("runs", total=len(cells))

    def finished(result: CellResult) -> None:
        partial.append(result)
        progress.console.print(_line(result), highlight=False, soft_wrap=True)
        progress.advance(task)

    try:
        with progress:
            results = run_matrix(spec, path, workers, on_result=finished)
    except KeyboardInterrupt:
        if partial:
            order = {cell: i for i, cell in enumerate(cells)}
            partial.sort(key=lambda r: order[r.cell])
            write_matrix(partial, path, _context(config, overrides))
        done = sum(1 for r in partial if r.error != INTERRUPTED)
        err_console.print(
            f"interrupted: {done} of {len(cells)} runs finished"
            + (f"; partial matrix in {path}" if partial else ""),
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    files = write_matrix(results, path, _context(config, overrides))
    console.print()
    console.print("[bold]Final accuracy[/]", highlight=False)
    for line in accuracy_table(results):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print()
    for label, file in (
        ("table", files.csv),
        ("summary", files.markdown),
        ("heatmap", files.heatmap),
    ):
        console.print(f"{label}: {file}", highlight=False, soft_wrap=True)
    console.print(f"run folders: {path / CELLS_DIR}", highlight=False, soft_wrap=True)
    failed = [r for r in results if not r.ok]
    if failed:
        err_console.print(
            f"[bold red]error:[/] {len(failed)} of {len(results)} runs failed "
            f"(see the error column of {files.csv})",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
