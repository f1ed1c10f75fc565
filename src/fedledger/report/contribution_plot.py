"""PNG chart of how much each device contributed: its cumulative score over the rounds.

Drawn on a :class:`~matplotlib.figure.Figure` (no ``pyplot`` state) like the other plots, and
deterministic for the same input and matplotlib version.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from fedledger.report._contributions import contribution_rounds, method_label, read_contributions
from fedledger.report._figure import cumulative, fixed_style, save_png
from fedledger.report._screening import is_malicious

__all__ = ["plot_contributions"]

#: Line colour per role; roles are only told apart when some device is malicious.
_COLOURS = {"honest": "tab:blue", "malicious": "tab:red", "role unknown": "tab:gray"}
_MAX_MARKED_ROUNDS = 30


def plot_contributions(
    records: list[dict[str, Any]], devices: Sequence[dict[str, Any]], path: Path
) -> Path:
    """Cumulative contribution per device over the rounds, one line per device, starting at 0
    before the first scored round. Malicious devices are drawn in red and honest ones in blue
    when ``devices`` lists a malicious device; otherwise every line has the same colour.

    Parameters
    ----------
    records
        Per-round dicts as in ``metrics.jsonl``; only those with a ``contribution`` entry are
        drawn, and a device without a score in a round keeps its total of the round before.
    devices
        The ``devices.json`` list (may be empty), whose roles colour the lines.
    path
        Where to write the PNG.

    Returns
    -------
    Path
        ``path``.
    """
    rounds = contribution_rounds(records)
    found = read_contributions(records, {})
    ids = sorted({d for _, scores in rounds for d in scores})
    x, y = cumulative(
        [r for r, _ in rounds],
        [[scores.get(d, 0.0) for d in ids] for _, scores in rounds],
        len(ids),
    )
    roles = {d: _role(devices, d) for d in ids}
    coloured = "malicious" in roles.values()
    label = method_label(found.method if found else None)
    width, alpha = (1.6, 0.9) if len(ids) <= 20 else (0.9, max(0.3, 0.9 * 20 / len(ids)))
    marker = "o" if len(rounds) <= _MAX_MARKED_ROUNDS else None
    with fixed_style():
        fig = _figure(len(ids), label)
        ax = fig.axes[0]
        ax.axhline(0.0, color="black", linewidth=0.8)
        for column, device in enumerate(ids):
            role = roles[device] if coloured else "honest"
            ax.plot(
                x,
                y[:, column],
                color=_COLOURS[role],
                linewidth=width,
                alpha=alpha,
                marker=marker,
                markersize=3,
                zorder=3 if role == "malicious" else 2,
            )
        if coloured:
            shown = [r for r in _COLOURS if r in roles.values()]
            handles = [Line2D([], [], color=_COLOURS[r], linewidth=2, label=r) for r in shown]
            ax.legend(handles=handles, loc="best")
        if not rounds:
            ax.set_xlim(-0.5, 1.5)
            ax.text(0.5, 0.5, "no contributions recorded", transform=ax.transAxes, ha="center")
        return save_png(fig, path)


def _figure(n_devices: int, label: str) -> Figure:
    """The empty figure: one axes with its title and axis labels."""
    fig = Figure(figsize=(8.0, 4.8), layout="constrained")
    ax = fig.subplots()
    ax.set_title(f"Cumulative contribution per device ({label}, {n_devices} devices)")
    ax.set_xlabel("round")
    ax.set_ylabel("cumulative score")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def _role(devices: Sequence[dict[str, Any]], device: int) -> str:
    """``malicious`` or ``honest`` by ``devices.json`` (honest when it is absent), or ``role
    unknown`` for an id it does not list."""
    if not devices:
        return "honest"
    if not 0 <= device < len(devices):
        return "role unknown"
    return "malicious" if is_malicious(devices[device]) else "honest"
