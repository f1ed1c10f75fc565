"""``fedledger datasets list``."""

from __future__ import annotations

from rich.table import Table

from fedledger.cli.common import console
from fedledger.data import DATASETS

__all__ = ["list_datasets"]


def list_datasets() -> None:
    """List the datasets fedledger can load and what each needs."""
    table = Table(title="datasets")
    for column in ("name", "set", "description", "files"):
        table.add_column(column, overflow="fold")
    for name, spec in sorted(DATASETS.items()):
        needs = {
            "dir": "data.dir",
            "path": "data.path",
            "dir-or-path": "data.dir or data.path",
            "nothing": "-",
        }[spec.needs]
        table.add_row(name, needs, spec.description, spec.source)
    console.print(table)
