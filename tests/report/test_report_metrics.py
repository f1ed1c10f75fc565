"""Classification and detection metrics, checked by hand and against scikit-learn."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from fedledger.report import binary_detection_metrics, classification_metrics

CLASSES = ["benign", "dos", "scan"]


def test_small_case_by_hand() -> None:
    m = classification_metrics(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), CLASSES, 0)
    assert m["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    assert m["accuracy"] == 0.5
    assert m["per_class"]["benign"] == {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    assert m["per_class"]["dos"] == pytest.approx(
        {"precision": 1 / 3, "recall": 1.0, "f1": 0.5, "support": 1}
    )
    # "scan" is never predicted correctly and never predicted: zero division gives 0.0.
    assert m["per_class"]["scan"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 0.0) / 3)
    # Both attacks were flagged as some attack (scan -> dos still counts as detected).
    assert m["detection_rate"] == 1.0
    assert m["false_alarm_rate"] == 0.5


def test_macro_f1_ignores_classes_absent_from_truth_and_predictions() -> None:
    classes = ["benign", "dos", "scan", "u2r"]  # u2r appears nowhere
    m = classification_metrics(np.array([0, 1, 2]), np.array([0, 1, 2]), classes, 0)
    assert m["macro_f1"] == 1.0
    assert m["per_class"]["u2r"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_class_only_predicted_counts_in_macro_f1() -> None:
    m = classification_metrics(np.array([0, 0]), np.array([0, 1]), ["a", "b"], None)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.0) / 2)


def test_rates_are_absent_without_a_benign_class() -> None:
    m = classification_metrics(np.array([0, 1]), np.array([0, 1]), ["a", "b"], None)
    assert "detection_rate" not in m
    assert "false_alarm_rate" not in m


def test_empty_input_gives_zeros() -> None:
    empty = np.array([], dtype=np.int64)
    m = classification_metrics(empty, empty, CLASSES, 0)
    assert m["accuracy"] == m["macro_f1"] == m["detection_rate"] == m["false_alarm_rate"] == 0.0
    assert m["confusion"] == [[0, 0, 0]] * 3


def test_result_is_plain_json() -> None:
    m = classification_metrics(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1]), CLASSES, 0)
    assert json.loads(json.dumps(m)) == m
    assert type(m["accuracy"]) is float
    assert type(m["per_class"]["dos"]["support"]) is int
    assert type(m["confusion"][0][0]) is int
    assert list(m["per_class"]) == CLASSES


@pytest.mark.parametrize(
    ("y_true", "y_pred", "benign", "match"),
    [
        ([0, 1], [0], 0, "y_true has 2 labels but y_pred has 1"),
        ([0, 3], [0, 1], 0, "y_true holds class index 3"),
        ([0, 1], [-1, 1], 0, "y_pred holds class index -1"),
        ([0.0, 1.0], [0, 1], 0, "integer class indices"),
        ([0, 1], [0, 1], 3, "benign_class 3"),
    ],
)
def test_bad_input_is_rejected(
    y_true: list[float], y_pred: list[int], benign: int, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        classification_metrics(np.array(y_true), np.array(y_pred), CLASSES, benign)


@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")
@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=8).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(
                st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=60
            ),
            st.integers(0, k - 1),
        )
    )
)
def test_matches_sklearn(case: tuple[int, list[tuple[int, int]], int]) -> None:
    n_classes, pairs, benign = case
    y_true = np.array([t for t, _ in pairs])
    y_pred = np.array([p for _, p in pairs])
    labels = list(range(n_classes))
    m = classification_metrics(y_true, y_pred, [f"c{i}" for i in labels], benign)

    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    present = np.union1d(y_true, y_pred)
    expected_macro = f1_score(y_true, y_pred, average="macro", labels=present, zero_division=0)
    assert m["macro_f1"] == pytest.approx(expected_macro)
    assert m["confusion"] == confusion_matrix(y_true, y_pred, labels=labels).tolist()
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    for i in labels:
        scores = m["per_class"][f"c{i}"]
        assert scores["precision"] == pytest.approx(precision[i])
        assert scores["recall"] == pytest.approx(recall[i])
        assert scores["f1"] == pytest.approx(f1[i])
        assert scores["support"] == support[i]

    # Detection rate = recall of "attack" after binarising; false alarms = benign flagged.
    attack_true, attack_pred = y_true != benign, y_pred != benign
    _, bin_recall, _, _ = precision_recall_fscore_support(
        attack_true, attack_pred, labels=[False, True], zero_division=0
    )
    assert m["detection_rate"] == pytest.approx(bin_recall[1])
    benign_rows = ~attack_true
    expected_far = attack_pred[benign_rows].mean() if benign_rows.any() else 0.0
    assert m["false_alarm_rate"] == pytest.approx(expected_far)


@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")
@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=50))
def test_binary_detection_matches_sklearn(pairs: list[tuple[bool, bool]]) -> None:
    truth = np.array([t for t, _ in pairs], dtype=bool)
    flagged = np.array([p for _, p in pairs], dtype=bool)
    m = binary_detection_metrics(truth, flagged)
    assert list(m["per_class"]) == ["benign", "attack"]
    assert m["confusion"] == confusion_matrix(truth, flagged, labels=[False, True]).tolist()
    _, recall, f1, _ = precision_recall_fscore_support(
        truth, flagged, labels=[False, True], zero_division=0
    )
    assert m["detection_rate"] == pytest.approx(recall[1])
    assert m["false_alarm_rate"] == pytest.approx(1.0 - recall[0] if (~truth).any() else 0.0)
    assert m["per_class"]["attack"]["f1"] == pytest.approx(f1[1])


def test_binary_detection_accepts_zero_one_ints() -> None:
    m = binary_detection_metrics(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 1]))
    assert m["detection_rate"] == 0.5
    assert m["false_alarm_rate"] == 0.5
    assert m["accuracy"] == 0.5


def test_a_million_samples_is_fast() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 62, 1_000_000)
    y_pred = rng.integers(0, 62, 1_000_000)
    classes = [f"class-{i}" for i in range(62)]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        classification_metrics(y_true, y_pred, classes, 0)
        best = min(best, time.perf_counter() - start)
    assert best < 0.1
