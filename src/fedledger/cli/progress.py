"""Live progress for ``fedledger run``: a bar and a per-round table."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

__all__ = ["RichRoundListener"]


def _fmt(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"


def _ledger(info: Any) -> str:
    """``finalised 3/3`` (votes for the finalised model / validators), ``fallback 2/3`` (the
    validator gate kept the previous model), or ``NO QUORUM``;
    rejected envelopes are counted after it."""
    if not isinstance(info, dict):
        return "-"
    text = f"finalised {info.get('votes')}/{info.get('validators')}"
    if info.get("gated"):
        text = f"fallback {info.get('votes')}/{info.get('validators')}"
    if not info.get("finalised"):
        text = "NO QUORUM"
    if info.get("rejected"):
        text += f", {info['rejected']} rejected"
    return text


def _flagged(screen: Any) -> str:
    """``3`` devices the strategy flagged, ``3 (2 malicious)`` while an attack runs."""
    if not isinstance(screen, dict):
        return "-"
    text = str(len(screen.get("flagged", [])))
    if "tp" in screen:
        text += f" ({screen['tp']} malicious)"
    return text


_COLUMNS = (
    "round",
    "accuracy",
    "macro-F1",
    "loss",
    "detection",
    "false alarm",
    "s",
    "ledger",
    "flagged",
)
_LIVE_ROWS = 20


class RichRoundListener:
    """Shows the rounds as they finish: a live table of the latest rounds and a progress bar on
    a terminal, one plain line per round otherwise."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.rows: list[tuple[str, ...]] = []
        self.progress = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rounds"),
            TimeRemainingColumn(),
            console=console,
        )
        self.task = self.progress.add_task("rounds", total=1)
        self.live: Live | None = None

    def on_start(self, first_round: int, last_round: int) -> None:
        self.progress.update(self.task, total=last_round, completed=first_round - 1)
        if self.console.is_terminal:
            self.live = Live(Group(self._table(), self.progress), console=self.console)
            self.live.start()

    def _table(self) -> Table:
        shown = self.rows[-_LIVE_ROWS:]
        title = "rounds" if len(shown) == len(self.rows) else f"last {len(shown)} rounds"
        table = Table(title=title, expand=False)
        for name in _COLUMNS:
            table.add_column(name, justify="right")
        for row in shown:
            table.add_row(*row)
        return table

    def on_round(self, record: dict[str, Any]) -> None:
        cells = (
            str(record["round"]),
            _fmt(record.get("accuracy")),
            _fmt(record.get("macro_f1")),
            _fmt(record.get("loss")),
            _fmt(record.get("detection_rate")),
            _fmt(record.get("false_alarm_rate")),
            _fmt(record.get("seconds"), 2),
            _ledger(record.get("ledger")),
            _flagged(record.get("screen")),
        )
        self.rows.append(cells)
        self.progress.advance(self.task)
        if self.live is not None:
            self.live.update(Group(self._table(), self.progress))
        else:
            self.console.print(
                f"round {cells[0]}: accuracy {cells[1]}  macro-F1 {cells[2]}  loss {cells[3]}  "
                f"detection {cells[4]}  false-alarm {cells[5]}  {cells[6]} s"
                + (f"  ledger: {cells[7]}" if cells[7] != "-" else "")
                + (f"  flagged: {cells[8]}" if cells[8] != "-" else ""),
                highlight=False,
                soft_wrap=True,
            )

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
