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
from fedledger.report.metrics import metrics_from_confusion

__all__ = [
    "ClassificationTask",
    "EvalData",
    "EvalStats",
    "ReconstructionTask",
    "Task",
    "task_from_labels",
]

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


@dataclass(frozen=True)
class EvalStats:
    """Additive evaluation statistics of one model on one slice of held-out data.

    Statistics of disjoint slices add up (:meth:`__add__`) to the statistics of their union,
    so validators that each evaluate their own slice can pool their results into exactly the
    whole-split metrics (:meth:`Task.metrics`).

    Attributes
    ----------
    confusion
        ``C x C`` int64 counts, rows = true class, columns = predicted class.
    sums
        Named float64 sums (loss totals and their counts), added key by key.
    """

    confusion: np.ndarray
    sums: dict[str, float]

    def __add__(self, other: EvalStats) -> EvalStats:
        return EvalStats(
            self.confusion + other.confusion,
            {k: self.sums[k] + other.sums[k] for k in self.sums},
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (exact: integers and floats round-trip through JSON)."""
        return {"confusion": self.confusion.tolist(), "sums": dict(sorted(self.sums.items()))}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> EvalStats:
        return cls(
            np.asarray(obj["confusion"], dtype=np.int64),
            {str(k): float(v) for k, v in obj["sums"].items()},
        )


_CHUNK = 1024  # rows per evaluation forward pass: bounds CNN activation memory


def _chunks(x: torch.Tensor, forward: Forward) -> torch.Tensor:
    with torch.no_grad():
        if len(x) == 0:  # e.g. a validator whose slice of a tiny test split is empty
            return forward(x)
        return torch.cat([forward(x[i : i + _CHUNK]) for i in range(0, len(x), _CHUNK)])


def _confusion(true: torch.Tensor, pred: torch.Tensor, n: int) -> np.ndarray:
    flat = torch.bincount(true * n + pred, minlength=n * n)
    counts: np.ndarray = flat.numpy().astype(np.int64).reshape(n, n)
    return counts


class Task(ABC):
    """The objective devices minimise and the way a global model is scored.

    Scoring is split so it can be shared out: :meth:`context` holds what every evaluator
    needs (e.g. a detection threshold from the devices' reports), :meth:`eval_stats` scores
    one slice of held-out data, and :meth:`metrics` turns pooled statistics into metrics.
    """

    name: str

    @abstractmethod
    def per_sample_loss(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Loss of every sample in a batch, shape ``[B]``."""

    def train_rows(self, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The subset of a device's rows it trains on (all of them by default)."""
        return rows

    def context(self, forward: Forward, data: EvalData) -> dict[str, float]:
        """Values every evaluator of this model needs (none by default)."""
        return {}

    @abstractmethod
    def eval_stats(
        self, forward: Forward, x: torch.Tensor, y: torch.Tensor, context: dict[str, float]
    ) -> EvalStats:
        """Statistics of the model (``forward`` in eval mode) on the samples ``x, y``."""

    @abstractmethod
    def metrics(self, stats: EvalStats, context: dict[str, float]) -> dict[str, Any]:
        """Metrics from (pooled) statistics."""

    @abstractmethod
    def labels(self) -> dict[str, Any]:
        """What :func:`task_from_labels` needs to rebuild this task's :meth:`metrics`."""

    def evaluate(self, forward: Forward, data: EvalData) -> dict[str, Any]:
        """Metrics of the global model on the whole test split."""
        context = self.context(forward, data)
        return self.metrics(self.eval_stats(forward, data.x_test, data.y_test, context), context)


class ClassificationTask(Task):
    """Multi-class intrusion detection with cross-entropy."""

    name = "classification"

    def __init__(self, classes: Sequence[str], benign_class: int | None) -> None:
        self.classes = tuple(classes)
        self.benign_class = benign_class

    def per_sample_loss(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out, y, reduction="none")

    def eval_stats(
        self, forward: Forward, x: torch.Tensor, y: torch.Tensor, context: dict[str, float]
    ) -> EvalStats:
        n = len(self.classes)
        logits = _chunks(x, forward)
        if logits.shape[-1] != n:
            raise ModelError(
                f"the model outputs {logits.shape[-1]} classes but the dataset has {n}"
            )
        losses = F.cross_entropy(logits, y, reduction="none").double()
        confusion = _confusion(y, logits.argmax(dim=1), n)
        return EvalStats(confusion, {"loss": float(losses.sum()), "n": float(len(y))})

    def labels(self) -> dict[str, Any]:
        return {"task": self.name, "classes": list(self.classes), "benign": self.benign_class}

    def metrics(self, stats: EvalStats, context: dict[str, float]) -> dict[str, Any]:
        loss = stats.sums["loss"] / max(stats.sums["n"], 1.0)
        return {
            "loss": loss,
            **metrics_from_confusion(stats.confusion, self.classes, self.benign_class),
        }


class ReconstructionTask(Task):
    """Benign-only autoencoder anomaly detection (Meidan et al., 2018, N-BaIoT).

    Devices train on their benign rows only. The detection threshold is ``mean + k·std`` of the
    reconstruction error on the devices' benign training rows, combined from per-device sums
    (count, Σe, Σe²) rather than pooled errors. A test sample above the threshold is an attack.
    The loss is the mean reconstruction error of benign test samples (of all test samples when
    there are none).
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

    def context(self, forward: Forward, data: EvalData) -> dict[str, float]:
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
        return {"threshold": mean + self.k * std}

    def eval_stats(
        self, forward: Forward, x: torch.Tensor, y: torch.Tensor, context: dict[str, float]
    ) -> EvalStats:
        errors = self._errors(forward, x)
        benign = y == self.benign_class
        flagged = errors > context["threshold"]
        confusion = _confusion((~benign).long(), flagged.long(), 2)
        e = errors.double()
        return EvalStats(
            confusion,
            {
                "benign_loss": float(e[benign].sum()),
                "benign_n": float(benign.sum()),
                "all_loss": float(e.sum()),
                "all_n": float(len(e)),
            },
        )

    def labels(self) -> dict[str, Any]:
        return {"task": self.name, "classes": ["benign", "attack"], "benign": self.benign_class}

    def metrics(self, stats: EvalStats, context: dict[str, float]) -> dict[str, Any]:
        s = stats.sums
        if s["benign_n"] > 0:
            loss = s["benign_loss"] / s["benign_n"]
        else:
            loss = s["all_loss"] / max(s["all_n"], 1.0)
        detection = metrics_from_confusion(stats.confusion, ("benign", "attack"), 0)
        return {"loss": loss, "threshold": context["threshold"], **detection}


def task_from_labels(labels: dict[str, Any]) -> Task:
    """The task whose :meth:`Task.labels` gave ``labels`` (enough for :meth:`Task.metrics`).

    Raises
    ------
    ValueError
        ``labels`` does not describe a task.
    """
    kind = labels.get("task")
    benign = labels.get("benign")
    if kind == "classification":
        classes = [str(c) for c in labels["classes"]]
        return ClassificationTask(classes, None if benign is None else int(benign))
    if kind == "reconstruction" and benign is not None:
        return ReconstructionTask(int(benign))
    raise ValueError(f"unknown task {kind!r}")
