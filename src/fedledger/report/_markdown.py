"""Small Markdown helpers for the run report: tables, numbers and code spans."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MISSING", "code", "config_value", "flatten", "number", "table"]

MISSING = "—"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """A GitHub-flavoured Markdown table as lines.

    Parameters
    ----------
    header
        Column titles.
    rows
        Cells, already formatted as text; ``|`` and newlines are escaped here.
    align
        One character per column, ``"l"`` or ``"r"`` (default: first column left, others right).

    Returns
    -------
    list of str
        The header, the alignment row and one line per row.
    """
    spec = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in spec]
    return [_row(header), _row(rule, escape=False), *(_row(r) for r in rows)]


def number(value: Any, digits: int = 4) -> str:
    """``value`` for a table cell: floats with ``digits`` decimals, ints as they are, a dash for
    a missing or non-finite value, and ``str()`` for anything else."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else MISSING
    return str(value)


def code(text: str) -> str:
    """``text`` as an inline code span."""
    return f"`{text}`"


def flatten(document: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested tables as ``(dotted.key, value)`` pairs, in document order.

    Examples
    --------
    >>> flatten({"train": {"lr": 0.1, "opt": {"name": "sgd"}}})
    [('train.lr', 0.1), ('train.opt.name', 'sgd')]
    """
    pairs: list[tuple[str, Any]] = []
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            pairs.extend(flatten(value, prefix=f"{name}."))
        else:
            pairs.append((name, value))
    return pairs


def config_value(value: Any) -> str:
    """A TOML value as it would be written: strings quoted, lists and tables as JSON."""
    if isinstance(value, str | list | dict | bool):
        return json.dumps(value, default=str)
    return str(value)


def _row(cells: Sequence[str], escape: bool = True) -> str:
    """One table row."""
    text = [_escape(c) if escape else c for c in cells]
    return "| " + " | ".join(text) + " |"


def _escape(cell: str) -> str:
    """Make ``cell`` safe inside a table row."""
    return cell.replace("|", "\\|").replace("\n", " ")
