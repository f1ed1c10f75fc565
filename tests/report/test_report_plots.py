"""The plots write non-empty, deterministic PNGs for ordinary and edge-case inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedledger.report import plot_confusion, plot_devices, plot_rounds

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "round": r,
            "accuracy": 0.5 + 0.4 * r / n,
            "macro_f1": 0.3 + 0.5 * r / n,
            "loss": 1.0 / r,
            "detection_rate": 0.9,
            "false_alarm_rate": 0.05,
        }
        for r in range(1, n + 1)
    ]


def _devices(n: int) -> list[dict[str, Any]]:
    clusters = ["camera", "thermostat", "doorbell"]
    return [
        {
            "device": f"dev-{i:03d}",
            "cluster": clusters[i % 3],
            "n_samples": 100 + 37 * i % 900,
            "role": "honest" if i % 5 else "free-rider",
        }
        for i in range(n)
    ]


def _is_png(path: Path) -> bool:
    data = path.read_bytes()
    return data.startswith(PNG_MAGIC) and len(data) > 2_000


@pytest.mark.parametrize("rounds", [0, 1, 5, 100])
def test_plot_rounds_writes_png(tmp_path: Path, rounds: int) -> None:
    path = tmp_path / "nested" / "rounds.png"
    assert plot_rounds(_records(rounds), path) == path
    assert _is_png(path)


def test_plot_rounds_tolerates_missing_and_null_values(tmp_path: Path) -> None:
    records: list[dict[str, Any]] = [{"accuracy": 0.5}, {"round": 2, "macro_f1": None}]
    assert _is_png(plot_rounds(records, tmp_path / "r.png"))


@pytest.mark.parametrize("n_classes", [2, 5, 20, 62])
def test_plot_confusion_writes_png(tmp_path: Path, n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    confusion = rng.integers(0, 1000, size=(n_classes, n_classes))
    confusion[0] = 0  # a class with no samples must not divide by zero
    classes = [f"attack-{i}" for i in range(n_classes)]
    assert _is_png(plot_confusion(confusion.tolist(), classes, tmp_path / "c.png"))


def test_plot_confusion_rejects_wrong_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected 3 x 3"):
        plot_confusion([[1, 2], [3, 4]], ["a", "b", "c"], tmp_path / "c.png")


@pytest.mark.parametrize("n_devices", [0, 1, 20, 200, 1000])
def test_plot_devices_writes_png(tmp_path: Path, n_devices: int) -> None:
    assert _is_png(plot_devices(_devices(n_devices), tmp_path / "d.png"))


def test_plot_devices_without_cluster_or_role(tmp_path: Path) -> None:
    devices: list[dict[str, Any]] = [{"n_samples": 10}, {"device": "x", "n_samples": 20}]
    assert _is_png(plot_devices(devices, tmp_path / "d.png"))


def test_plots_are_deterministic(tmp_path: Path) -> None:
    first = [
        plot_rounds(_records(10), tmp_path / "a" / "r.png"),
        plot_confusion([[5, 1], [2, 7]], ["benign", "attack"], tmp_path / "a" / "c.png"),
        plot_devices(_devices(30), tmp_path / "a" / "d.png"),
    ]
    second = [
        plot_rounds(_records(10), tmp_path / "b" / "r.png"),
        plot_confusion([[5, 1], [2, 7]], ["benign", "attack"], tmp_path / "b" / "c.png"),
        plot_devices(_devices(30), tmp_path / "b" / "d.png"),
    ]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
