"""The ``fedledger`` command line (typer + rich), one command per module.

Commands are registered here, explicitly, not by importing modules for their side effects.
"""

import typer

from fedledger.cli.attack_matrix import attack_matrix
from fedledger.cli.audit import audit
from fedledger.cli.datasets import list_datasets
from fedledger.cli.ledger import show_ledger
from fedledger.cli.report import report
from fedledger.cli.run import run

__all__ = ["build_app", "main"]


def build_app() -> typer.Typer:
    """The typer application with every command."""
    app = typer.Typer(
        name="fedledger",
        help="Blockchain-secured federated learning for IoT intrusion detection.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.command("run")(run)
    app.command("report")(report)
    app.command("audit")(audit)
    app.command("attack-matrix")(attack_matrix)
    datasets = typer.Typer(help="Datasets fedledger can load.", no_args_is_help=True)
    datasets.command("list")(list_datasets)
    app.add_typer(datasets, name="datasets")
    ledger = typer.Typer(help="Inspect a run's ledger.", no_args_is_help=True)
    ledger.command("show")(show_ledger)
    app.add_typer(ledger, name="ledger")
    return app


def main() -> None:
    """Console-script entry point."""
    build_app()()
