"""UNSW-NB15 loader: the official training and testing set CSVs.

Moustafa and Slay, "UNSW-NB15: a comprehensive data set for network intrusion detection
systems", MilCIS 2015. Files ``UNSW_NB15_training-set.csv`` and ``UNSW_NB15_testing-set.csv``
(plain or ``.gz``) in ``data.dir``; classes come from ``attack_cat`` (``Normal`` first), the
binary ``label`` and the row ``id`` are dropped; ``proto``, ``service``, ``state`` are
categorical.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from fedledger.config import DataConfig
from fedledger.data.labels import class_order, encode
from fedledger.data.sources import require_dir, require_named
from fedledger.data.tabular import read_labelled, to_table
from fedledger.data.types import RawDataset

__all__ = ["load_unsw_nb15"]

_TRAIN = "UNSW_NB15_training-set.csv"
_TEST = "UNSW_NB15_testing-set.csv"
CATEGORICAL = ("proto", "service", "state")


def load_unsw_nb15(cfg: DataConfig, seed: int = 0) -> RawDataset:
    """Load UNSW-NB15 from ``cfg.dir``.

    Raises
    ------
    DatasetNotFoundError
        The folder or one of the two CSVs is missing.
    DataError
        A column is missing, a row is ragged, or a numeric column holds a non-number.
    """
    folder = require_dir(cfg.dir, "unsw-nb15", f"{_TRAIN}[.gz] and {_TEST}[.gz]")
    parts = [
        read_labelled(
            require_named(folder, "unsw-nb15", name),
            label="attack_cat",
            categorical=CATEGORICAL,
            drop=("id", "label"),
        )
        for name in (_TRAIN, _TEST)
    ]
    # blank attack_cat means normal traffic in some copies
    parts = [
        replace(p, label_text=np.where(np.isin(p.label_text, ["", "-"]), "Normal", p.label_text))
        for p in parts
    ]
    classes, benign = class_order(np.concatenate([p.label_text for p in parts]))
    train, test = (to_table(p, encode(p.label_text, classes)) for p in parts)
    return RawDataset(
        name="unsw-nb15",
        kind="tabular",
        classes=classes,
        train=train,
        test=test,
        numeric_names=parts[0].numeric_names,
        categorical_names=parts[0].categorical_names,
        benign_class=benign,
    )
