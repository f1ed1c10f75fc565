"""``digits``: scikit-learn's bundled 8x8 handwritten digits (offline, 1,797 images, 10 classes).

The images come from the UCI "Optical Recognition of Handwritten Digits" data set (Alpaydin and
Kaynak, 1998) as shipped inside scikit-learn, so no download is needed. Pixels (0..16) are
scaled to [0, 1]; a stratified, seeded test split of ``data.test_fraction`` is held out.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits as _sk_load_digits
from sklearn.model_selection import train_test_split

from fedledger.config import DataConfig
from fedledger.data.types import RawDataset, Table

__all__ = ["load_digits"]


def _table(x: np.ndarray, y: np.ndarray) -> Table:
    return Table(
        numeric=x.astype(np.float32),
        categorical=np.zeros((x.shape[0], 0), dtype=str),
        labels=y.astype(np.int64),
    )


def load_digits(cfg: DataConfig, seed: int = 0) -> RawDataset:
    """Load scikit-learn's digits, images ``(1, 8, 8)`` in [0, 1], with a stratified test split."""
    bunch = _sk_load_digits()
    x = np.asarray(bunch.data, dtype=np.float64) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=cfg.test_fraction, random_state=seed, stratify=y
    )
    return RawDataset(
        name="digits",
        kind="image",
        classes=tuple(str(d) for d in range(10)),
        train=_table(x_tr, y_tr),
        test=_table(x_te, y_te),
        image_shape=(1, 8, 8),
        benign_class=None,
    )
