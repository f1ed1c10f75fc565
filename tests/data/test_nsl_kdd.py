"""NSL-KDD loader on tiny generated files in the real 43-column format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedledger.config import DataConfig
from fedledger.data import build_federated
from fedledger.data.nsl_kdd import CLASSES, load_nsl_kdd
from fedledger.errors import ConfigError, DataError, DatasetNotFoundError
from tests.data.files import nsl_row, write_text


def test_loads_plain_and_gz(nsl_dir: Path) -> None:
    raw = load_nsl_kdd(DataConfig(name="nsl-kdd", dir=str(nsl_dir)))
    assert raw.classes == CLASSES == ("normal", "DoS", "Probe", "R2L", "U2R")
    assert raw.test is not None
    assert len(raw.train) == 60 and len(raw.test) == 20
    assert raw.train.numeric.shape == (60, 38) and raw.train.categorical.shape == (60, 3)
    assert raw.categorical_names == ("protocol_type", "service", "flag")
    assert set(np.unique(raw.train.labels)) == {0, 1, 2, 3, 4}
    assert raw.benign_class == 0 and raw.train.groups is None


def test_binary(nsl_dir: Path) -> None:
    fed = build_federated(
        DataConfig(name="nsl-kdd", dir=str(nsl_dir), binary=True, partition="iid", clients=3)
    )
    assert fed.classes == ("normal", "attack")
    assert set(np.unique(fed.y_train)) == {0, 1}


def test_unknown_attack_names_line(nsl_dir: Path) -> None:
    rng = np.random.default_rng(0)
    lines = [nsl_row(rng, "normal"), nsl_row(rng, "neptune"), nsl_row(rng, "zeroday")]
    write_text(nsl_dir / "KDDTest+.txt", "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 3: unknown attack name 'zeroday'"):
        load_nsl_kdd(DataConfig(name="nsl-kdd", dir=str(nsl_dir)))


def test_wrong_column_count(tmp_path: Path) -> None:
    write_text(tmp_path / "KDDTrain+.txt", "1,tcp,http,SF,normal\n")
    write_text(tmp_path / "KDDTest+.txt", "1,tcp,http,SF,normal\n")
    with pytest.raises(DataError, match="expected 43"):
        load_nsl_kdd(DataConfig(name="nsl-kdd", dir=str(tmp_path)))


def test_missing_dir_and_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="KDDTrain"):
        load_nsl_kdd(DataConfig(name="nsl-kdd", dir=str(tmp_path / "absent")))
    with pytest.raises(DatasetNotFoundError, match=r"KDDTrain\+\.txt"):
        load_nsl_kdd(DataConfig(name="nsl-kdd", dir=str(tmp_path)))
    with pytest.raises(ConfigError, match=r"data\.dir"):
        load_nsl_kdd(DataConfig(name="nsl-kdd"))
