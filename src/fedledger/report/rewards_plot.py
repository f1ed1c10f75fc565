"""PNG chart of the tokens each device was paid: its cumulative reward over the rounds.

Drawn on a :class:`~matplotlib.figure.Figure` (no ``pyplot`` state) like the other plots, and
deterministic for the same input and matplotlib version.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from fedledger.report._figure import cumulative, fixed_style, save_png
from fedledger.report._rewards import reward_rounds
from fedledger.report._screening import is_malicious
from fedledger.report.contribution_plot import _role

__all__ = ["plot_rewards"]

#: Line colour and width per role; roles are only told apart when some device is malicious.
_STYLES = {
    "honest": ("tab:blue", 1.0),
    "malicious": ("tab:red", 2.0),
    "role unknown": ("tab:gray", 1.0),
}
_MAX_MARKED_ROUNDS = 30


def plot_rewards(
    records: list[dict[str, Any]], devices: Sequence[dict[str, Any]], path: Path
) -> Path:
    """Cumulative tokens paid per device over the rounds, one line per device, starting at 0
    before the first round with a ``rewards`` entry. When ``devices`` lists a malicious device,
    honest devices are drawn in thin blue lines and malicious ones in thick red lines, and a
    second panel shows the mean cumulative reward per honest and per malicious device;
    otherwise every line has the same colour. Rounds that did not settle pay nothing and are
    marked with a dotted vertical line.

    Parameters
    ----------
    records
        Per-round dicts as in ``metrics.jsonl``; only those with a ``rewards`` entry are drawn.
    devices
        The ``devices.json`` list (may be empty), whose roles colour the lines; every device it
        lists is drawn, paid or not.
    path
        Where to write the PNG.

    Returns
    -------
    Path
        ``path``.
    """
    rounds = reward_rounds(records)
    ids = sorted({d for entry in rounds for d in entry.paid} | set(range(len(devices))))
    x, y = cumulative(
        [entry.round for entry in rounds],
        [[entry.paid.get(d, 0.0) for d in ids] for entry in rounds],
        len(ids),
    )
    roles = {d: _role(devices, d) for d in ids}
    coloured = "malicious" in roles.values()
    labels = _labels(devices) if coloured else {"honest": "devices"}
    marker = "o" if len(rounds) <= _MAX_MARKED_ROUNDS else None
    alpha = 0.9 if len(ids) <= 20 else max(0.3, 0.9 * 20 / len(ids))
    with fixed_style():
        fig = _figure(len(ids), panels=2 if coloured else 1)
        ax = fig.axes[0]
        for entry in rounds:
            if not entry.settled:
                ax.axvline(entry.round, color="0.5", linestyle=":", linewidth=1.0)
        for column, device in enumerate(ids):
            role = roles[device] if coloured else "honest"
            colour, width = _STYLES[role]
            ax.plot(
                x,
                y[:, column],
                color=colour,
                linewidth=width,
                alpha=alpha,
                marker=marker,
                markersize=3,
                zorder=3 if role == "malicious" else 2,
            )
        shown = [r for r in _STYLES if r in roles.values()] if coloured else ["honest"]
        _legend(ax, shown, labels, unsettled=any(not e.settled for e in rounds))
        if coloured:
            _means(fig.axes[1], x, y, [roles[d] for d in ids], labels)
        if not rounds:
            ax.set_xlim(-0.5, 1.5)
            ax.text(0.5, 0.5, "no rewards recorded", transform=ax.transAxes, ha="center")
        return save_png(fig, path)


def _figure(n_devices: int, panels: int) -> Figure:
    """The empty figure: one axes per panel, stacked, with titles and axis labels."""
    fig = Figure(figsize=(8.0, 4.8 if panels == 1 else 7.6), layout="constrained")
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    axes[0].set_title(f"Cumulative rewards per device ({n_devices} devices)")
    axes[-1].set_xlabel("round")
    axes[0].set_ylabel("cumulative tokens")
    if panels > 1:
        axes[1].set_title("Mean cumulative rewards per device, by role")
        axes[1].set_ylabel("mean cumulative tokens")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def _means(
    ax: Axes, x: np.ndarray, y: np.ndarray, roles: list[str], labels: dict[str, str]
) -> None:
    """The mean cumulative reward per device of each role, one thick line per role."""
    for role, (colour, _) in _STYLES.items():
        columns = [i for i, r in enumerate(roles) if r == role]
        if columns:
            mean = y[:, columns].mean(axis=1)
            ax.plot(x, mean, color=colour, linewidth=2.2, label=f"{labels[role]}, mean")
    ax.legend(loc="best")


def _legend(ax: Axes, shown: list[str], labels: dict[str, str], unsettled: bool) -> None:
    """One legend entry per group of lines (and one for the unsettled rounds, if any)."""
    handles = [
        Line2D([], [], color=_STYLES[r][0], linewidth=max(2.0, _STYLES[r][1]), label=labels[r])
        for r in shown
    ]
    if unsettled:
        handles.append(Line2D([], [], color="0.5", linestyle=":", label="round not settled"))
    if handles:
        ax.legend(handles=handles, loc="best")


def _labels(devices: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Legend text per role; the malicious group names its attacks."""
    attacks = sorted({str(d["attack"]) for d in devices if is_malicious(d) and d.get("attack")})
    bad = f"malicious ({', '.join(attacks)})" if attacks else "malicious"
    return {"honest": "honest", "malicious": bad, "role unknown": "role unknown"}
