"""Metrics, plots and Markdown reports for fedledger runs.

This is a low layer: it reads the files a run folder holds and depends only on numpy,
matplotlib and the standard library, never on the training engine.

Examples
--------
>>> from pathlib import Path
>>> report = write_report(Path("runs/nsl-kdd-fedavg"))  # doctest: +SKIP
>>> report.name  # doctest: +SKIP
'report.md'
"""

from __future__ import annotations

from fedledger.report.contribution_plot import plot_contributions
from fedledger.report.metrics import binary_detection_metrics, classification_metrics
from fedledger.report.plots import plot_confusion, plot_devices, plot_rounds, plot_screen
from fedledger.report.rewards_plot import plot_rewards
from fedledger.report.run_files import read_config, read_devices, read_metrics, read_summary
from fedledger.report.run_report import write_report

__all__ = [
    "binary_detection_metrics",
    "classification_metrics",
    "plot_confusion",
    "plot_contributions",
    "plot_devices",
    "plot_rewards",
    "plot_rounds",
    "plot_screen",
    "read_config",
    "read_devices",
    "read_metrics",
    "read_summary",
    "write_report",
]
