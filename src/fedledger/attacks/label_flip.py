"""Label flipping: a malicious device trains on labels ``c → C − 1 − c``."""

from __future__ import annotations

import numpy as np

from fedledger.attacks.base import Attack

__all__ = ["LabelFlip"]


class LabelFlip(Attack):
    """Tolpegin, Truex, Gursoy, Liu, ESORICS 2020, "Data Poisoning Attacks Against Federated
    Learning Systems": malicious devices train honestly on flipped labels, here every class
    ``c`` of ``C`` becomes ``C − 1 − c`` (benign traffic is learnt as the last attack class and
    vice versa)."""

    name = "label_flip"
    needs_classes = True

    def poison_data(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray, n_classes: int) -> None:
        y[rows] = n_classes - 1 - y[rows]
