"""Write ``report.md`` and its plots for a run folder, finished or not."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedledger.report._contributions import contribution_section
from fedledger.report._rewards import rewards_section
from fedledger.report._sections import (
    config_section,
    devices_section,
    final_section,
    header_section,
    ledger_section,
    model_section,
    per_class_section,
    rounds_section,
    screen_section,
    secure_section,
)
from fedledger.report.contribution_plot import plot_contributions
from fedledger.report.plots import plot_confusion, plot_devices, plot_rounds, plot_screen
from fedledger.report.rewards_plot import plot_rewards
from fedledger.report.run_files import (
    MODEL_FILE,
    model_digest,
    read_config,
    read_devices,
    read_metrics,
    read_model_sha256,
    read_summary,
)

__all__ = ["write_report"]

REPORT_FILE = "report.md"
PLOTS_DIR = "plots"


def write_report(run_dir: Path) -> Path:
    """Write ``RUN_DIR/report.md`` and ``RUN_DIR/plots/*.png`` from the files of a run.

    The report has a title, the dataset (with a note when the data are synthetic), the final
    metrics, a table and plot of the metrics per round, the ledger and secure aggregation when
    the run used them, the devices a screening strategy flagged (with how well it found the
    malicious ones when an attack ran), each device's contribution when ``incentives.method``
    scored them, the tokens each device was paid when the run paid rewards, per-class scores
    with the confusion matrix, a device summary, the model file with its sha256 (checked
    against ``model.sha256`` and ``summary.json``) and the resolved configuration. Images are
    linked relatively, so the folder can be moved or published as it is.

    A run that is still going or was stopped is reported as far as it got: only
    ``metrics.jsonl`` is required, and sections whose files are missing say so.

    Parameters
    ----------
    run_dir
        The run folder written by the engine.

    Returns
    -------
    Path
        The path of ``report.md``.

    Raises
    ------
    CheckpointError
        If the folder or ``metrics.jsonl`` is missing, or a file in it cannot be parsed.

    Examples
    --------
    >>> write_report(Path("runs/nsl-kdd-fedavg"))  # doctest: +SKIP
    PosixPath('runs/nsl-kdd-fedavg/report.md')
    """
    folder = Path(run_dir)
    records = read_metrics(folder)
    summary = read_summary(folder)
    devices = read_devices(folder)
    config = read_config(folder)
    final = records[-1] if records else _dict(summary.get("final"))
    round_label = f"round {final.get('round', len(records))}" if final else "no round yet"
    classes = _class_names(summary, final)

    plots = folder / PLOTS_DIR
    plot_rounds(records, plots / "rounds.png")
    confusion_plot = None
    confusion = final.get("confusion")
    if isinstance(confusion, list) and classes and len(confusion) == len(classes):
        plot_confusion(confusion, classes, plots / "confusion.png")
        confusion_plot = f"{PLOTS_DIR}/confusion.png"
    screen_plot = _entry_plot(records, devices, "screen", plot_screen, plots)
    contribution_plot = _entry_plot(
        records, devices, "contribution", plot_contributions, plots, "contributions.png"
    )
    rewards_plot = _entry_plot(records, devices, "rewards", plot_rewards, plots)
    devices_plot = None
    if devices:
        plot_devices(devices, plots / "devices.png")
        devices_plot = f"{PLOTS_DIR}/devices.png"

    model = folder / MODEL_FILE
    recorded = {"model.sha256": read_model_sha256(folder), "summary.json": _summary_digest(summary)}
    lines = [
        *header_section(folder.resolve().name, records, summary, config, classes),
        *final_section(final, round_label, finished=bool(summary)),
        *rounds_section(records, f"{PLOTS_DIR}/rounds.png"),
        *ledger_section(records),
        *secure_section(records),
        *screen_section(records, summary, devices, _strategy(config), screen_plot),
        *contribution_section(records, summary, devices, contribution_plot),
        *rewards_section(records, summary, devices, rewards_plot),
        *per_class_section(final, round_label, confusion_plot),
        *devices_section(devices, devices_plot),
        *model_section(MODEL_FILE, _size(model), model_digest(folder), recorded),
        *config_section(config),
    ]
    return _write_text(folder / REPORT_FILE, "\n".join(lines).rstrip() + "\n")


def _entry_plot(
    records: list[dict[str, Any]],
    devices: list[dict[str, Any]],
    key: str,
    plot: Callable[[list[dict[str, Any]], list[dict[str, Any]], Path], Path],
    plots: Path,
    name: str | None = None,
) -> str | None:
    """Draw ``plot`` into ``plots/<name>`` (default ``<key>.png``) when some round has a
    ``key`` entry; return its path relative to the run folder, else ``None``."""
    if not any(isinstance(r.get(key), dict) for r in records):
        return None
    file = name or f"{key}.png"
    plot(records, devices, plots / file)
    return f"{PLOTS_DIR}/{file}"


def _class_names(summary: dict[str, Any], final: dict[str, Any]) -> list[str]:
    """Class names from ``summary.json``, else the per-class keys of the last round, else
    ``0 .. n-1`` for the size of its confusion matrix."""
    classes = summary.get("classes")
    if isinstance(classes, list) and classes:
        return [str(c) for c in classes]
    per_class = final.get("per_class")
    if isinstance(per_class, dict) and per_class:
        return [str(c) for c in per_class]
    confusion = final.get("confusion")
    return [str(i) for i in range(len(confusion))] if isinstance(confusion, list) else []


def _write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file, so readers never see half of it."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path


def _size(path: Path) -> int | None:
    """File size in bytes, or None if the file does not exist."""
    return path.stat().st_size if path.is_file() else None


def _dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a dict, else an empty dict."""
    return value if isinstance(value, dict) else {}


def _strategy(config: dict[str, Any]) -> str | None:
    """``strategy.name`` of the configuration, if it is a string."""
    strategy = config.get("strategy")
    name = strategy.get("name") if isinstance(strategy, dict) else None
    return name if isinstance(name, str) else None


def _summary_digest(summary: dict[str, Any]) -> str | None:
    """The ``model_sha256`` recorded in the summary, if it is a string."""
    digest = summary.get("model_sha256")
    return digest if isinstance(digest, str) else None
