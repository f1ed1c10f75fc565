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

from fedledger.matrix.cell import CELLS_DIR, CellResult, run_cell
from fedledger.matrix.runner import INTERRUPTED, check_out, run_matrix
from fedledger.matrix.spec import ATTACK_FREE, Cell, MatrixSpec
from fedledger.matrix.tables import (
    CSV_COLUMNS,
    MatrixFiles,
    accuracy_table,
    matrix_csv,
    matrix_markdown,
    write_matrix,
)

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
