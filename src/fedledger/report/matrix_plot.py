"""The heatmap of an attack × defence matrix: one annotated panel per metric.

Like the other plots it draws on a :class:`~matplotlib.figure.Figure` (no ``pyplot`` state) and
depends only on numpy and matplotlib: the caller hands over the row and column labels and one
array of values per panel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure

from fedledger.report._figure import fixed_style, save_png

__all__ = ["HeatmapPanel", "plot_matrix_heatmap"]

_MISSING_COLOUR = "#d9d9d9"


@dataclass(frozen=True)
class HeatmapPanel:
    """One panel of :func:`plot_matrix_heatmap`.

    Attributes
    ----------
    title
        Panel title, e.g. ``"Final accuracy"``.
    values
        ``rows x columns`` values in [0, 1]; NaN marks a cell without a value (failed, or not
        applicable), drawn grey.
    spread
        Optional ``rows x columns`` standard deviations, written under each value.
    colour_label
        Label of the panel's colour bar.
    cmap
        A matplotlib colour map name.
    """

    title: str
    values: np.ndarray
    spread: np.ndarray | None = None
    colour_label: str = ""
    cmap: str = "viridis"


def plot_matrix_heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    panels: Sequence[HeatmapPanel],
    path: Path,
    title: str = "",
) -> Path:
    """Draw the panels side by side, each with annotated cells and a colour bar on [0, 1].

    Parameters
    ----------
    rows
        Row labels (``attack@fraction``).
    columns
        Column labels (defences).
    panels
        At least one panel; every ``values`` (and ``spread``) has shape ``(len(rows),
        len(columns))``.
    path
        Where to write the PNG.
    title
        Figure title (none when empty).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If there is no panel or a panel's shape does not match the labels.
    """
    shape = (len(rows), len(columns))
    if not panels:
        raise ValueError("plot_matrix_heatmap needs at least one panel")
    for panel in panels:
        if panel.values.shape != shape or (
            panel.spread is not None and panel.spread.shape != shape
        ):
            raise ValueError(
                f"panel {panel.title!r} has shape {panel.values.shape}, expected {shape}"
            )
    width = float(np.clip(1.1 * len(columns) + 3.2, 5.0, 14.0))
    height = float(np.clip(0.5 * len(rows) + 2.0, 3.2, 16.0))
    with fixed_style():
        fig = Figure(figsize=(width * len(panels), height), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, panel in zip(axes, panels, strict=True):
            _panel(fig, ax, rows, columns, panel)
        if title:
            fig.suptitle(title)
        return save_png(fig, path)


def _panel(
    fig: Figure, ax: Axes, rows: Sequence[str], columns: Sequence[str], panel: HeatmapPanel
) -> None:
    """One heatmap with its colour bar and a value (± spread) written in every cell."""
    cmap = matplotlib.colormaps[panel.cmap].with_extremes(bad=_MISSING_COLOUR)
    norm = Normalize(vmin=0.0, vmax=1.0)
    values = np.ma.masked_invalid(np.asarray(panel.values, dtype=np.float64))
    ax.grid(False)
    ax.spines[:].set_visible(False)
    image = ax.imshow(values, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    bar = fig.colorbar(image, ax=ax, shrink=0.9)
    bar.set_label(panel.colour_label or panel.title)
    ax.set_xticks(np.arange(len(columns)), list(columns), rotation=30, ha="right")
    ax.set_yticks(np.arange(len(rows)), list(rows))
    ax.set_xlabel("defence (strategy.name)")
    ax.set_ylabel("attack@fraction")
    ax.set_title(panel.title)
    size = 9.0 if len(rows) * len(columns) <= 60 else 7.0
    for (r, c), value in np.ndenumerate(np.asarray(panel.values, dtype=np.float64)):
        spread = math.nan if panel.spread is None else float(panel.spread[r, c])
        text = _cell_text(float(value), spread)
        label = ax.text(
            c,
            r,
            text,
            ha="center",
            va="center",
            fontsize=size,
            color=_text_colour(cmap, norm, float(value)),
        )
        label.set_in_layout(False)


def _cell_text(value: float, spread: float) -> str:
    """``0.87``, ``0.87\\n±0.02`` with a spread, ``—`` for a missing value."""
    if not math.isfinite(value):
        return "—"
    if math.isfinite(spread):
        return f"{value:.2f}\n±{spread:.2f}"
    return f"{value:.2f}"


def _text_colour(cmap: Colormap, norm: Normalize, value: float) -> str:
    """Black on light cells, white on dark ones (by the cell colour's luminance)."""
    if not math.isfinite(value):
        return "black"
    red, green, blue, _ = cmap(float(norm(value)))
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"
