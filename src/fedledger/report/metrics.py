"""Classification and intrusion-detection metrics, computed from one confusion matrix.

Everything is derived from a single ``np.bincount`` over ``true * n_classes + pred``, so a
million predictions take a few milliseconds. Results are plain Python types (``float``,
``int``, ``list``, ``dict``) and can be written to JSON as they are.

Conventions
-----------
- Zero division gives ``0.0`` (precision of a class never predicted, recall of a class with no
  samples, any rate over an empty set).
- ``macro_f1`` is the mean F1 over the classes *present*: those that occur in ``y_true`` or in
  ``y_pred``. Classes absent from both are left out instead of counting as ``0.0``, so a
  validation split that happens to miss a rare attack class is not penalised for it. This equals
  ``sklearn.metrics.f1_score(y_true, y_pred, average="macro",
  labels=np.union1d(y_true, y_pred), zero_division=0)``.
- ``detection_rate`` (attack recall) is the share of attack samples predicted as *any* attack
  class, and ``false_alarm_rate`` the share of benign samples predicted as any attack class;
  mistaking one attack for another still counts as a detection.

Examples
--------
>>> import numpy as np
>>> m = classification_metrics(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]),
...                            ["benign", "dos", "scan"], benign_class=0)
>>> m["accuracy"], m["detection_rate"], m["false_alarm_rate"]
(0.5, 1.0, 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["binary_detection_metrics", "classification_metrics", "metrics_from_confusion"]


def classification_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    classes: Sequence[str],
    benign_class: int | None,
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class scores, confusion matrix and IDS rates.

    Parameters
    ----------
    y_true, y_pred
        Integer class indices in ``[0, len(classes))``, of the same length.
    classes
        Class names; ``classes[i]`` names index ``i``.
    benign_class
        Index of the benign (normal traffic) class, or None when there is no such class
        (e.g. MNIST); then ``detection_rate`` and ``false_alarm_rate`` are left out.

    Returns
    -------
    dict
        ``accuracy`` (float), ``macro_f1`` (float), ``per_class`` (``{name: {"precision",
        "recall", "f1", "support"}}`` in class order), ``confusion`` (``n x n`` list of lists
        of int, rows = true class, columns = predicted class) and, when ``benign_class`` is
        given, ``detection_rate`` and ``false_alarm_rate`` (floats).

    Raises
    ------
    ValueError
        If the arrays differ in length, are not integer, or hold an index out of range, or if
        ``benign_class`` is out of range.
    """
    n_classes = len(classes)
    if n_classes == 0:
        raise ValueError("classes is empty")
    if benign_class is not None and not 0 <= benign_class < n_classes:
        raise ValueError(f"benign_class {benign_class} is not in [0, {n_classes})")
    true = _as_labels(y_true, "y_true", n_classes)
    pred = _as_labels(y_pred, "y_pred", n_classes)
    if true.shape != pred.shape:
        raise ValueError(f"y_true has {true.size} labels but y_pred has {pred.size}")
    flat = np.bincount(true * n_classes + pred, minlength=n_classes * n_classes)
    return metrics_from_confusion(flat.reshape(n_classes, n_classes), classes, benign_class)


def binary_detection_metrics(
    is_attack_true: np.ndarray, is_attack_pred: np.ndarray
) -> dict[str, Any]:
    """:func:`classification_metrics` for an anomaly detector's benign/attack decisions.

    Parameters
    ----------
    is_attack_true, is_attack_pred
        Boolean (or 0/1) arrays of the same length: is the sample an attack, was it flagged.

    Returns
    -------
    dict
        The keys of :func:`classification_metrics` for the classes ``("benign", "attack")``,
        including ``detection_rate`` and ``false_alarm_rate``.
    """
    true = np.asarray(is_attack_true).astype(bool, copy=False).astype(np.intp)
    pred = np.asarray(is_attack_pred).astype(bool, copy=False).astype(np.intp)
    return classification_metrics(true, pred, ("benign", "attack"), benign_class=0)


def metrics_from_confusion(
    confusion: np.ndarray, classes: Sequence[str], benign_class: int | None
) -> dict[str, Any]:
    """The metrics of :func:`classification_metrics` from an ``n x n`` confusion matrix.

    Parameters
    ----------
    confusion
        Non-negative integer counts, rows = true class, columns = predicted class.
    classes
        Class names, one per row.
    benign_class
        Index of the benign class, or None.

    Returns
    -------
    dict
        As :func:`classification_metrics`.
    """
    cm = np.asarray(confusion, dtype=np.int64)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2.0 * tp, support + predicted)  # = 2PR/(P+R), and 0 where both are 0
    present = (support + predicted) > 0
    result: dict[str, Any] = {
        "accuracy": _ratio(float(tp.sum()), int(support.sum())),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            str(name): {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        },
        "confusion": cm.tolist(),
    }
    if benign_class is not None:
        attack = np.ones(cm.shape[0], dtype=bool)
        attack[benign_class] = False
        detected = float(cm[attack][:, attack].sum())
        false_alarms = float(cm[benign_class, attack].sum())
        result["detection_rate"] = _ratio(detected, int(support[attack].sum()))
        result["false_alarm_rate"] = _ratio(false_alarms, int(support[benign_class]))
    return result


def _as_labels(values: np.ndarray, name: str, n_classes: int) -> np.ndarray:
    """Check ``values`` are integer indices in range and return them as a flat intp array."""
    array = np.asarray(values).ravel()
    if array.size == 0:
        return array.astype(np.intp)
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise ValueError(f"{name} must hold integer class indices, got dtype {array.dtype}")
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= n_classes:
        bad = low if low < 0 else high
        raise ValueError(f"{name} holds class index {bad}, outside [0, {n_classes})")
    return array.astype(np.intp, copy=False)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise ``numerator / denominator`` with 0.0 where the denominator is 0."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _ratio(numerator: float, denominator: int) -> float:
    """``numerator / denominator``, or 0.0 when the denominator is 0."""
    return numerator / denominator if denominator > 0 else 0.0
