"""``fedledger audit RUN_DIR [--json]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fedledger.cli.common import console, friendly_errors

__all__ = ["audit"]


@friendly_errors
def audit(
    run_dir: Annotated[Path, typer.Argument(help="a run folder with a ledger")],
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Replay RUN_DIR's ledger and check every record against it; exit 0 only if all pass."""
    from fedledger.audit import audit_run  # web3 and py-evm are slow to import

    with console.status(f"replaying the ledger of {run_dir}…"):
        report = audit_run(run_dir)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=1))
    else:
        facts = report.facts
        if facts:
            console.print(
                f"{run_dir}: {facts['backend']} ledger, {facts['rounds']} rounds "
                f"({facts['finalised']} finalised), quorum {facts['quorum']}, "
                f"{facts['members']} registered members",
                highlight=False,
                soft_wrap=True,
            )
        for check in report.checks:
            mark = "[green]PASS[/]" if check.ok else "[bold red]FAIL[/]"
            console.print(
                f"{mark} {check.name:<10} {check.description} ({check.checked} checked)",
                highlight=False,
                soft_wrap=True,
            )
            for problem in check.problems:
                console.print(f"     [red]✗[/] {problem}", highlight=False, soft_wrap=True)
            for note in check.notes:
                console.print(f"     [dim]· {note}[/]", highlight=False, soft_wrap=True)
        verdict = "[green]audit OK[/]" if report.ok else "[bold red]audit FAILED[/]"
        console.print(verdict)
    if not report.ok:
        raise typer.Exit(1)
