"""Reading delimited text files (plain or gzip) into numpy arrays, fast and with clear errors.

Parsing is vectorised: rows are checked for a constant field count once, then numeric columns
go through numpy's C ``loadtxt`` parser. Only when that fails (an empty cell, a quoted field, a
stray word) does a slower path run, which maps empty cells to NaN and otherwise names the file,
line and column of the first bad value in a :class:`~fedledger.errors.DataError`.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fedledger.errors import DataError, DatasetNotFoundError

__all__ = ["CsvFile", "find_file", "read_bytes", "read_csv", "read_text"]


def read_bytes(path: Path) -> bytes:
    """The whole file; ``.gz`` files are decompressed.

    Raises
    ------
    DatasetNotFoundError
        The file does not exist.
    DataError
        The gzip stream is truncated or corrupt, or the file cannot be read.
    """
    if not path.is_file():
        raise DatasetNotFoundError(f"file not found: {path}")
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip file ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None


def read_text(path: Path) -> str:
    """The whole file as UTF-8 text (see :func:`read_bytes`); bad bytes raise DataError."""
    raw = read_bytes(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def find_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever exists (plain first), else None."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


class CsvFile:
    """The data rows of one delimited file, with their original line numbers.

    Use :func:`read_csv` to build one. Columns are addressed by position.
    """

    def __init__(
        self, path: Path, header: tuple[str, ...] | None, lines: list[str], line_no: np.ndarray
    ) -> None:
        self.path = path
        self.header = header
        self.lines = lines
        self.line_no = line_no
        self.quoted = any('"' in line for line in lines)
        self._cells: np.ndarray | None = None
        self.n_fields = len(header) if header is not None else self._first_width()
        self._check_widths()

    def __len__(self) -> int:
        return len(self.lines)

    def _first_width(self) -> int:
        if not self.lines:
            return 0
        return len(next(csv.reader([self.lines[0]])))

    def _fail(self, row: int, message: str) -> DataError:
        return DataError(f"{self.path}: line {int(self.line_no[row])}: {message}")

    def _check_widths(self) -> None:
        expected = self.n_fields
        if self.quoted:
            widths = [len(r) for r in csv.reader(self.lines)]
        else:
            widths = [line.count(",") + 1 for line in self.lines]
        bad = np.flatnonzero(np.asarray(widths, dtype=np.int64) != expected)
        if bad.size:
            row = int(bad[0])
            raise self._fail(row, f"expected {expected} fields, found {widths[row]}")

    def _object_cells(self) -> np.ndarray:
        if self._cells is None:
            if self.quoted:
                rows: list[list[str]] = list(csv.reader(self.lines))
                flat = [cell for r in rows for cell in r]
            else:
                flat = ",".join(self.lines).split(",")
            cells = np.empty(len(flat), dtype=object)
            cells[:] = flat
            self._cells = cells.reshape(len(self.lines), self.n_fields)
        return self._cells

    def column_name(self, col: int) -> str:
        """The header name of column ``col``, or ``"column N"`` (1-based) without a header."""
        return self.header[col] if self.header is not None else f"column {col + 1}"

    def numeric(self, cols: Sequence[int]) -> np.ndarray:
        """float64 ``[N, len(cols)]``; empty cells become NaN.

        Raises
        ------
        DataError
            A cell is not a number; the message names file, line and column.
        """
        cols = list(cols)
        if not cols or not self.lines:
            return np.zeros((len(self.lines), len(cols)), dtype=np.float64)
        if not self.quoted:
            try:
                out = np.loadtxt(
                    self.lines,
                    delimiter=",",
                    comments=None,
                    usecols=cols,
                    ndmin=2,
                    dtype=np.float64,
                )
                return np.asarray(out, dtype=np.float64)
            except ValueError:
                pass  # fall through to the cell-by-cell path that can name the bad value
        cells = self._object_cells()
        out = np.empty((len(self.lines), len(cols)), dtype=np.float64)
        for j, col in enumerate(cols):
            values = cells[:, col]
            stripped = np.char.strip(values.astype(str))
            stripped = np.where(stripped == "", "nan", stripped)
            try:
                out[:, j] = stripped.astype(np.float64)
            except ValueError:
                for row, text in enumerate(stripped):
                    try:
                        float(text)
                    except ValueError:
                        raise self._fail(
                            row, f"{self.column_name(col)}: {str(text)[:40]!r} is not a number"
                        ) from None
                raise
        return out

    def strings(self, cols: Sequence[int]) -> np.ndarray:
        """``str`` array ``[N, len(cols)]`` with surrounding whitespace stripped."""
        cols = list(cols)
        if not cols or not self.lines:
            return np.zeros((len(self.lines), len(cols)), dtype=str)
        if self.quoted:
            out = self._object_cells()[:, cols].astype(str)
        else:
            out = np.loadtxt(
                self.lines, delimiter=",", comments=None, usecols=cols, ndmin=2, dtype=str
            )
        return np.char.strip(np.asarray(out, dtype=str))


def read_csv(path: Path, *, header: bool) -> CsvFile:
    """Read a comma-separated file (plain or ``.gz``) and check every row has the same width.

    Blank lines are skipped; ``\\r\\n`` line endings are accepted.

    Raises
    ------
    DatasetNotFoundError
        The file does not exist.
    DataError
        The file is corrupt, empty (with ``header=True``), or a row has the wrong field count.
    """
    text = read_text(path)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    numbers = np.arange(1, len(lines) + 1, dtype=np.int64)
    if "" in lines:
        keep = [i for i, line in enumerate(lines) if line.strip()]
        lines = [lines[i] for i in keep]
        numbers = numbers[keep]
    names: tuple[str, ...] | None = None
    if header:
        if not lines:
            raise DataError(f"{path}: empty file, expected a header row")
        names = tuple(c.strip() for c in next(csv.reader([lines[0]])))
        if names and names[0].startswith("\ufeff"):
            names = (names[0][1:], *names[1:])
        lines, numbers = lines[1:], numbers[1:]
    return CsvFile(path, names, lines, numbers)
