"""PNG charts of a run: metrics per round, the confusion matrix, samples per device, and the
devices a screening strategy flagged.

Each function draws one :class:`~matplotlib.figure.Figure` (no ``pyplot`` state), writes it to
``path`` (creating the folder) and returns ``path``. Output is deterministic for the same input
and matplotlib version.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from fedledger.report._figure import cluster_colours, fixed_style, save_png
from fedledger.report._screening import screen_rounds

__all__ = ["plot_confusion", "plot_devices", "plot_rounds", "plot_screen"]

#: Round metrics drawn on the top panel of :func:`plot_rounds`: key, label, line style.
_ROUND_SERIES = (
    ("accuracy", "accuracy", "-"),
    ("macro_f1", "macro-F1", "-"),
    ("detection_rate", "detection rate", "--"),
    ("false_alarm_rate", "false alarm rate", ":"),
)
#: Rates drawn over :func:`plot_screen`'s bars: attribute, label, line style, colour, marker.
_SCREEN_RATES = (
    ("recall", "recall (per round)", "-", "black", "o"),
    ("backdoor_success", "backdoor success", "--", "tab:purple", "s"),
)
_MAX_ANNOTATED_CLASSES = 20
_MAX_DEVICE_BARS = 200
_MAX_DEVICE_TICKS = 40
_MAX_LEGEND_CLUSTERS = 20


def plot_rounds(records: list[dict[str, Any]], path: Path) -> Path:
    """Accuracy and macro-F1 per round (plus detection/false-alarm rates when recorded), with
    the training loss on a smaller panel below.

    Parameters
    ----------
    records
        Per-round dicts as in ``metrics.jsonl``; ``round`` defaults to the 1-based position and
        missing values leave a gap.
    path
        Where to write the PNG.

    Returns
    -------
    Path
        ``path``.
    """
    rounds = np.array([_number(r.get("round"), i + 1) for i, r in enumerate(records)])
    marker = "o" if len(records) <= 30 else None
    with fixed_style():
        fig = Figure(figsize=(8.0, 6.0), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        for key, label, style in _ROUND_SERIES:
            values = _series(records, key)
            if key in ("accuracy", "macro_f1") or not np.isnan(values).all():
                top.plot(rounds, values, style, marker=marker, markersize=4, label=label)
        top.set_ylim(0.0, 1.02)
        top.set_ylabel("score on validation data")
        top.set_title(f"Global model per round ({len(records)} rounds)")
        if records:
            top.legend(loc="best")
        loss = _series(records, "loss")
        bottom.plot(rounds, loss, color="tab:red", marker=marker, markersize=3)
        bottom.set_ylabel("loss")
        bottom.set_xlabel("round")
        bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
        if not records:
            bottom.set_xlim(0.5, 1.5)
            _note(top, "no finished rounds yet")
        elif np.isnan(loss).all():
            _note(bottom, "no loss recorded")
        return save_png(fig, path)


def plot_confusion(confusion: list[list[int]], classes: Sequence[str], path: Path) -> Path:
    """Confusion-matrix heatmap: colour is the share of each true class, text the raw count.

    Parameters
    ----------
    confusion
        ``n x n`` counts, rows = true class, columns = predicted class.
    classes
        ``n`` class names.
    path
        Where to write the PNG.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    Counts are written in the cells only up to 20 classes; beyond that they would not be
    legible and the colours carry the information.

    Raises
    ------
    ValueError
        If ``confusion`` is not square with one row per class.
    """
    n = len(classes)
    counts = np.asarray(confusion, dtype=np.int64)
    if n == 0 or counts.shape != (n, n):
        raise ValueError(f"confusion has shape {counts.shape}, expected {n} x {n} for the classes")
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    side = float(np.clip(0.2 * n + 3.5, 5.5, 15.5))
    label_size = 9.0 if n <= 20 else max(6.0, 9.0 - n / 20)
    with fixed_style():
        fig = Figure(figsize=(side + 1.2, side), layout="constrained")
        ax = fig.subplots()
        ax.grid(False)
        image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
        colourbar = fig.colorbar(image, ax=ax, shrink=0.8)
        colourbar.set_label("share of the true class (row-normalised)")
        ticks = np.arange(n)
        ax.set_xticks(ticks, [str(c) for c in classes], rotation=90, fontsize=label_size)
        ax.set_yticks(ticks, [str(c) for c in classes], fontsize=label_size)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(f"Confusion matrix ({int(counts.sum())} samples)")
        if n <= _MAX_ANNOTATED_CLASSES:
            _annotate_counts(ax, counts, shares, fontsize=8.0 if n <= 10 else 6.5)
        return save_png(fig, path)


def plot_devices(devices: list[dict[str, Any]], path: Path) -> Path:
    """Samples per device coloured by cluster: one bar per device, or a stacked histogram
    when there are more than 200 devices.

    Parameters
    ----------
    devices
        Dicts with ``n_samples`` and optionally ``device``, ``cluster`` and ``role`` (as in
        ``devices.json``). Devices whose role is not ``"honest"`` get hatched bars.
    path
        Where to write the PNG.

    Returns
    -------
    Path
        ``path``.
    """
    clusters = [str(d.get("cluster", "none")) for d in devices]
    names = sorted(set(clusters))
    colours = cluster_colours(names)
    with fixed_style():
        bars = len(devices) <= _MAX_DEVICE_BARS
        width = float(np.clip(0.06 * len(devices) + 5.0, 8.0, 16.0)) if bars else 9.0
        fig = Figure(figsize=(width, 4.8), layout="constrained")
        ax = fig.subplots()
        ax.set_title(f"Samples per device ({len(devices)} devices, {len(names)} clusters)")
        if not devices:
            _note(ax, "no devices recorded")
        elif bars:
            _device_bars(ax, devices, clusters, colours)
        else:
            _device_histogram(ax, devices, clusters, names, colours)
        return save_png(fig, path)


def plot_screen(records: list[dict[str, Any]], devices: list[dict[str, Any]], path: Path) -> Path:
    """Devices a screening strategy flagged per round, as bars stacked by role: malicious
    (true positives, hatched) and honest (false positives). While an attack runs, the round's
    recall is drawn on a second axis, with the backdoor's success rate when it is recorded.

    Parameters
    ----------
    records
        Per-round dicts as in ``metrics.jsonl``; only those with a ``screen`` entry are drawn.
    devices
        The ``devices.json`` list, whose roles split the flags of rounds without detection
        counts (before the attack starts); without it such flags are drawn as "role unknown".
    path
        Where to write the PNG.

    Returns
    -------
    Path
        ``path``.
    """
    rounds = screen_rounds(records, devices)
    x = np.array([r.round for r in rounds], dtype=np.float64)
    malicious = np.array([r.malicious for r in rounds], dtype=np.float64)
    honest = np.array([r.honest for r in rounds], dtype=np.float64)
    unknown = np.array([r.unknown for r in rounds], dtype=np.float64)
    markers = len(rounds) <= 30
    with fixed_style():
        fig = Figure(figsize=(8.0, 4.8), layout="constrained")
        ax = fig.subplots()
        ax.set_title(f"Devices flagged by the strategy per round ({len(rounds)} rounds)")
        ax.bar(
            x,
            malicious,
            0.8,
            color="tab:red",
            edgecolor="black",
            hatch="////",
            label="malicious (true positives)",
        )
        ax.bar(x, honest, 0.8, malicious, color="tab:blue", label="honest (false positives)")
        if unknown.any():
            ax.bar(x, unknown, 0.8, malicious + honest, color="tab:gray", label="role unknown")
        ax.set_ylim(0.0, max(1.0, float((malicious + honest + unknown).max(initial=0.0))) * 1.05)
        ax.set_xlabel("round")
        ax.set_ylabel("flagged devices")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="x", visible=False)
        twin = None
        for key, label, style, colour, marker in _SCREEN_RATES:
            values = np.array([_number(getattr(r, key), math.nan) for r in rounds])
            if np.isnan(values).all():
                continue
            if twin is None:
                twin = ax.twinx()
                twin.grid(False)
                twin.spines["right"].set_visible(True)
                twin.set_ylim(0.0, 1.02)
                twin.set_ylabel("rate (lines)")
                ax.set_ylabel("flagged devices (bars)")
            twin.plot(
                x,
                values,
                style,
                color=colour,
                marker=marker if markers else None,
                markersize=4,
                label=label,
            )
        if rounds:
            fig.legend(loc="outside lower center", ncols=4)
        else:
            ax.set_xlim(0.5, 1.5)
            _note(ax, "no screened rounds")
        return save_png(fig, path)


def _device_bars(
    ax: Axes, devices: list[dict[str, Any]], clusters: list[str], colours: dict[str, Any]
) -> None:
    """One bar per device, grouped by cluster, hatched for non-honest roles."""
    order = sorted(range(len(devices)), key=lambda i: (clusters[i], i))
    x = np.arange(len(order))
    heights = [_number(devices[i].get("n_samples"), 0) for i in order]
    bars = ax.bar(x, heights, width=0.85, color=[colours[clusters[i]] for i in order])
    adversarial = False
    for bar, i in zip(bars, order, strict=True):
        if str(devices[i].get("role", "honest")) != "honest":
            bar.set_hatch("////")
            bar.set_edgecolor("black")
            adversarial = True
    if len(order) <= _MAX_DEVICE_TICKS:
        labels = [str(devices[i].get("device", i)) for i in order]
        ax.set_xticks(x, labels, rotation=90, fontsize=8)
        ax.set_xlabel("device")
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"device (grouped by cluster, {len(order)} devices)")
    ax.set_ylabel("training samples")
    ax.grid(axis="x", visible=False)
    handles = _cluster_handles(colours)
    if adversarial:
        handles.append(
            Patch(facecolor="white", edgecolor="black", hatch="////", label="non-honest role")
        )
    ax.legend(handles=handles, title="cluster", loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _device_histogram(
    ax: Axes,
    devices: list[dict[str, Any]],
    clusters: list[str],
    names: list[str],
    colours: dict[str, Any],
) -> None:
    """Histogram of samples per device, stacked by cluster."""
    samples = np.array([_number(d.get("n_samples"), 0) for d in devices], dtype=np.float64)
    groups = [samples[[c == name for c in clusters]] for name in names]
    bins = np.histogram_bin_edges(samples, bins=min(50, max(10, int(math.sqrt(len(samples))))))
    ax.hist(
        groups, bins=bins.tolist(), stacked=True, color=[colours[n] for n in names], label=names
    )
    ax.set_xlabel("training samples per device")
    ax.set_ylabel("devices")
    ax.legend(handles=_cluster_handles(colours), title="cluster", loc="upper right")


def _cluster_handles(colours: dict[str, Any]) -> list[Patch]:
    """Legend patches for the first clusters, plus a "+k more" entry when there are many."""
    items = list(colours.items())
    handles = [Patch(color=c, label=name) for name, c in items[:_MAX_LEGEND_CLUSTERS]]
    if len(items) > _MAX_LEGEND_CLUSTERS:
        extra = len(items) - _MAX_LEGEND_CLUSTERS
        handles.append(Patch(color="white", label=f"+{extra} more"))
    return handles


def _annotate_counts(ax: Axes, counts: np.ndarray, shares: np.ndarray, fontsize: float) -> None:
    """Write each cell's count, white on dark cells and black on light ones."""
    for (row, col), count in np.ndenumerate(counts):
        colour = "white" if shares[row, col] > 0.55 else "black"
        label = ax.text(
            col,
            row,
            _compact(int(count)),
            ha="center",
            va="center",
            color=colour,
            fontsize=fontsize,
        )
        label.set_in_layout(False)  # inside the axes: layout need not measure 400 texts


def _compact(count: int) -> str:
    """``1234`` -> ``"1234"``, ``123456`` -> ``"123k"``, ``12345678`` -> ``"12M"``."""
    if count < 10_000:
        return str(count)
    if count < 10_000_000:
        return f"{count // 1000}k"
    return f"{count // 1_000_000}M"


def _series(records: list[dict[str, Any]], key: str) -> np.ndarray:
    """``record[key]`` for every record as floats, NaN where missing or not a number."""
    return np.array([_number(r.get(key), math.nan) for r in records], dtype=np.float64)


def _number(value: Any, default: float) -> float:
    """``value`` as a float if it is a (non-bool) number, else ``default``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default


def _note(ax: Axes, text: str) -> None:
    """Write a grey message in the middle of an empty panel."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="grey")
