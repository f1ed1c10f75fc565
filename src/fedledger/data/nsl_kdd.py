"""NSL-KDD loader: ``KDDTrain+.txt`` and ``KDDTest+.txt`` (plain or ``.gz``), five classes.

Tavallaee, Bagheri, Lu and Ghorbani, "A Detailed Analysis of the KDD CUP 99 Data Set", CISDA
2009. Attack names are grouped into the usual families DoS, Probe, R2L and U2R (the same map as
``shared/bench/make_w1.py``); the difficulty column is dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedledger.config import DataConfig
from fedledger.data.csvio import read_csv
from fedledger.data.sources import require_dir, require_named
from fedledger.data.types import RawDataset, Table
from fedledger.errors import DataError

__all__ = ["CLASSES", "COLUMNS", "FAMILY", "load_nsl_kdd"]

COLUMNS = (
    "duration",
    "protocol_type",
    "service",
    "flag",
    "src_bytes",
    "dst_bytes",
    "land",
    "wrong_fragment",
    "urgent",
    "hot",
    "num_failed_logins",
    "logged_in",
    "num_compromised",
    "root_shell",
    "su_attempted",
    "num_root",
    "num_file_creations",
    "num_shells",
    "num_access_files",
    "num_outbound_cmds",
    "is_host_login",
    "is_guest_login",
    "count",
    "srv_count",
    "serror_rate",
    "srv_serror_rate",
    "rerror_rate",
    "srv_rerror_rate",
    "same_srv_rate",
    "diff_srv_rate",
    "srv_diff_host_rate",
    "dst_host_count",
    "dst_host_srv_count",
    "dst_host_same_srv_rate",
    "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate",
    "dst_host_srv_diff_host_rate",
    "dst_host_serror_rate",
    "dst_host_srv_serror_rate",
    "dst_host_rerror_rate",
    "dst_host_srv_rerror_rate",
)
"""The 41 feature columns, in file order (then ``label`` and ``difficulty``)."""

CATEGORICAL = ("protocol_type", "service", "flag")
CLASSES = ("normal", "DoS", "Probe", "R2L", "U2R")
FAMILY: dict[str, str] = {"normal": "normal"}
for _family, _names in {
    "DoS": "back land neptune pod smurf teardrop apache2 mailbomb processtable udpstorm",
    "Probe": "ipsweep nmap portsweep satan mscan saint",
    "R2L": "ftp_write guess_passwd imap multihop phf spy warezclient warezmaster named sendmail "
    "snmpgetattack snmpguess xlock xsnoop worm",
    "U2R": "buffer_overflow loadmodule perl rootkit httptunnel ps sqlattack xterm",
}.items():
    FAMILY.update(dict.fromkeys(_names.split(), _family))

_EXPECTED = "KDDTrain+.txt[.gz] and KDDTest+.txt[.gz]"


def _read(path: Path) -> Table:
    data = read_csv(path, header=False)
    if data.n_fields not in (42, 43):
        raise DataError(f"{path}: expected 43 comma-separated columns, found {data.n_fields}")
    cat_idx = [COLUMNS.index(c) for c in CATEGORICAL]
    num_idx = [i for i in range(41) if i not in cat_idx]
    text = data.strings([*cat_idx, 41])
    names = text[:, -1]
    uniq, inverse = np.unique(names, return_inverse=True)
    codes = np.empty(len(uniq), dtype=np.int64)
    for k, name in enumerate(uniq):
        family = FAMILY.get(str(name))
        if family is None:
            row = int(np.flatnonzero(inverse.reshape(-1) == k)[0])
            raise DataError(
                f"{path}: line {int(data.line_no[row])}: unknown attack name {str(name)!r}"
            )
        codes[k] = CLASSES.index(family)
    return Table(
        numeric=data.numeric(num_idx),
        categorical=text[:, :-1],
        labels=codes[inverse.reshape(-1)],
    )


def load_nsl_kdd(cfg: DataConfig, seed: int = 0) -> RawDataset:
    """Load NSL-KDD from ``cfg.dir``.

    Parameters
    ----------
    cfg
        ``cfg.dir`` holds ``KDDTrain+.txt`` and ``KDDTest+.txt``, plain or gzip-compressed.
    seed
        Unused (the files fix the split).

    Raises
    ------
    DatasetNotFoundError
        The folder or one of the two files is missing.
    DataError
        A row does not have 43 columns, a number does not parse, or an attack name is unknown.
    """
    folder = require_dir(cfg.dir, "nsl-kdd", _EXPECTED)
    train = _read(require_named(folder, "nsl-kdd", "KDDTrain+.txt"))
    test = _read(require_named(folder, "nsl-kdd", "KDDTest+.txt"))
    return RawDataset(
        name="nsl-kdd",
        kind="tabular",
        classes=CLASSES,
        train=train,
        test=test,
        numeric_names=tuple(c for c in COLUMNS if c not in CATEGORICAL),
        categorical_names=CATEGORICAL,
        benign_class=0,
    )
