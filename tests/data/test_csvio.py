"""CSV reading: fast path, empty cells, quotes, and one-line errors naming file and line."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from fedledger.data.csvio import read_csv
from fedledger.errors import DataError, DatasetNotFoundError
from tests.data.files import write_text


def test_numeric_and_strings(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv.gz", "x,y,c\n1,2.5,a\n-3,inf,b\n")
    data = read_csv(path, header=True)
    assert data.header == ("x", "y", "c")
    np.testing.assert_array_equal(data.numeric([0, 1]), [[1, 2.5], [-3, np.inf]])
    assert data.strings([2])[:, 0].tolist() == ["a", "b"]


def test_crlf_blank_lines_and_empty_cells(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", "x,y\r\n1,\r\n\r\n2,3\r\n")
    data = read_csv(path, header=True)
    x = data.numeric([0, 1])
    assert x.shape == (2, 2) and np.isnan(x[0, 1]) and x[1, 1] == 3


def test_quoted_fields(tmp_path: Path) -> None:
    path = write_text(tmp_path / "q.csv", 'x,name\n1,"a, b"\n2,c\n')
    data = read_csv(path, header=True)
    assert data.strings([1])[:, 0].tolist() == ["a, b", "c"]
    assert data.numeric([0])[:, 0].tolist() == [1.0, 2.0]


def test_ragged_row_names_line(tmp_path: Path) -> None:
    path = write_text(tmp_path / "r.csv", "x,y\n1,2\n3\n")
    with pytest.raises(DataError, match=r"r\.csv: line 3: expected 2 fields, found 1"):
        read_csv(path, header=True)


def test_non_numeric_cell_names_line_and_column(tmp_path: Path) -> None:
    data = read_csv(write_text(tmp_path / "n.csv", "x,y\n1,2\n3,oops\n"), header=True)
    with pytest.raises(DataError, match=r"line 3: y: 'oops' is not a number"):
        data.numeric([0, 1])


def test_truncated_gzip(tmp_path: Path) -> None:
    blob = gzip.compress(("x,y\n" + "1,2\n" * 5000).encode())
    path = tmp_path / "t.csv.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_csv(path, header=True)


def test_not_gzip_and_not_utf8(tmp_path: Path) -> None:
    bad = tmp_path / "b.csv.gz"
    bad.write_bytes(b"plain text")
    with pytest.raises(DataError):
        read_csv(bad, header=True)
    latin = tmp_path / "l.csv"
    latin.write_bytes(b"x\n\xff\xfe\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_csv(latin, header=True)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"nope\.csv"):
        read_csv(tmp_path / "nope.csv", header=True)
