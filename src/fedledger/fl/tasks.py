"""What a model is trained to do: classify traffic, or reconstruct benign traffic."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fedledger.errors import ModelError
from fedledger.report.metrics import binary_detection_metrics, classification_metrics

__all__ = ["ClassificationTask", "EvalData", "ReconstructionTask", "Task"]

Forward = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class EvalData:
    """What evaluating a global model may read: the test split, and the devices' training rows
    (only for statistics a device would report, such as an anomaly threshold's sums)."""

    x_test: torch.Tensor
    y_test: torch.Tensor
    x_train: torch.Tensor
    y_train: torch.Tensor
    train_rows: Sequence[np.ndarray]


_CHUNK = 1024  # rows per evaluation forward pass: bounds CNN activation memory


def _chunks(x: torch.Tensor, forward: Forward) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([forward(x[i : i + _CHUNK]) for i in range(0, len(x), _CHUNK)])


class Task(ABC):
    """The objective devices minimise and the way a global model is scored."""

    name: str

    @abstractmethod
    def per_sample_loss(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Loss of every sample in a batch, shape ``[B]``."""

    def train_rows(self, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The subset of a device's rows it trains on (all of them by default)."""
        return rows

    @abstractmethod
    def evaluate(self, forward: Forward, data: EvalData) -> dict[str, Any]:
        """Metrics of the global model (``forward`` in eval mode) on the test split."""


class ClassificationTask(Task):
    """Multi-class intrusion detection with cross-entropy."""

    name = "classification"

    def __init__(self, classes: Sequence[str], benign_class: int | None) -> None:
        self.classes = tuple(classes)
        self.benign_class = benign_class

    def per_sample_loss(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out, y, reduction="none")

    def evaluate(self, forward: Forward, data: EvalData) -> dict[str, Any]:
        logits = _chunks(data.x_test, forward)
        if logits.shape[-1] != len(self.classes):
            raise ModelError(
                f"the model outputs {logits.shape[-1]} classes but the dataset has "
                f"{len(self.classes)}"
            )
        loss = float(F.cross_entropy(logits, data.y_test))
        pred = logits.argmax(dim=1).numpy()
        metrics = classification_metrics(data.y_test.numpy(), pred, self.classes, self.benign_class)
        return {"loss": loss, **metrics}


class ReconstructionTask(Task):
    """Benign-only autoencoder anomaly detection (Meidan et al., 2018, N-BaIoT).

    Devices train on their benign rows only. The detection threshold is ``mean + k·std`` of the
    reconstruction error on the devices' benign training rows, combined from per-device sums
    (count, Σe, Σe²) rather than pooled errors. A test sample above the threshold is an attack.
    """

    name = "reconstruction"

    def __init__(self, benign_class: int, k: float = 1.0) -> None:
        self.benign_class = benign_class
        self.k = k

    def per_sample_loss(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((out - x) ** 2).flatten(1).mean(dim=1)

    def train_rows(self, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
        kept: np.ndarray = rows[y[rows] == self.benign_class]
        return kept

    def _errors(self, forward: Forward, x: torch.Tensor) -> torch.Tensor:
        return _chunks(x, lambda b: ((forward(b) - b) ** 2).flatten(1).mean(dim=1))

    def evaluate(self, forward: Forward, data: EvalData) -> dict[str, Any]:
        count, total, total_sq = 0, 0.0, 0.0
        for rows in data.train_rows:  # each device reports only its sums
            if len(rows) == 0:
                continue
            e = self._errors(forward, data.x_train[torch.from_numpy(rows)]).double()
            count += len(rows)
            total += float(e.sum())
            total_sq += float((e * e).sum())
        mean = total / max(count, 1)
        std = max(total_sq / max(count, 1) - mean * mean, 0.0) ** 0.5
        threshold = mean + self.k * std
        errors = self._errors(forward, data.x_test)
        benign = data.y_test == self.benign_class
        loss = float(errors[benign].mean()) if bool(benign.any()) else float(errors.mean())
        metrics = binary_detection_metrics((~benign).numpy(), (errors > threshold).numpy())
        return {"loss": loss, "threshold": threshold, **metrics}
