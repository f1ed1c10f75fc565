"""Figure plumbing shared by the plots: a fixed style and a deterministic PNG writer.

Plots are built on :class:`matplotlib.figure.Figure` directly, never through ``pyplot``, so
they keep no global figure registry, need no GUI backend and are safe to draw from a worker
thread. Styles are applied from matplotlib's defaults, so a user's ``matplotlibrc`` does not
change our output.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib.style
import numpy as np
from matplotlib.figure import Figure

__all__ = ["cluster_colours", "cumulative", "fixed_style", "save_png"]

_STYLE: dict[str, Any] = {
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 12,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.framealpha": 0.9,
    "svg.hashsalt": "fedledger",
}

_DPI = 100


@contextmanager
def fixed_style() -> Iterator[None]:
    """Draw with matplotlib's defaults plus the fedledger overrides, whatever the user's rc."""
    with matplotlib.style.context(["default", _STYLE]):
        yield


def save_png(figure: Figure, path: Path) -> Path:
    """Write ``figure`` as a PNG at ``path`` (creating its folder) and return the path.

    The ``Software`` metadata entry is dropped so that the bytes depend only on the drawing.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png", dpi=_DPI, metadata={"Software": None})
    return target


def cluster_colours(names: list[str]) -> dict[str, Any]:
    """One qualitative colour per name (``tab10`` up to 10 names, ``tab20`` cycled beyond)."""
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    count = int(getattr(cmap, "N", 10))
    return {name: cmap(i % count) for i, name in enumerate(names)}


def cumulative(
    rounds: list[int], steps: list[list[float]], n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Running totals of ``n`` series to draw as lines: ``x`` the round before the first one,
    then ``rounds``; ``y`` ``[len(rounds) + 1, n]``, zeros and then the cumulative sums of
    ``steps`` (one row of ``n`` per round)."""
    x = np.array([rounds[0] - 1 if rounds else 0, *rounds], dtype=np.float64)
    rows = np.array(steps, dtype=np.float64).reshape(len(rounds), n)
    return x, np.vstack([np.zeros((1, n)), np.cumsum(rows, 0)])
