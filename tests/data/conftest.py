"""Fixtures for the data tests: tiny files generated in ``tmp_path``, never the real datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.data.files import NSL_LABELS, nsl_row, write_text


@pytest.fixture
def nsl_dir(tmp_path: Path) -> Path:
    """``KDDTrain+.txt.gz`` (60 rows) and plain ``KDDTest+.txt`` (20 rows)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "nsl"
    train = [nsl_row(rng, NSL_LABELS[i % len(NSL_LABELS)]) for i in range(60)]
    test = [nsl_row(rng, NSL_LABELS[i % len(NSL_LABELS)]) for i in range(20)]
    write_text(folder / "KDDTrain+.txt.gz", "\n".join(train) + "\n")
    write_text(folder / "KDDTest+.txt", "\n".join(test) + "\n")
    return folder


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1)
