"""What a screening or selecting strategy flagged, round by round, read from ``metrics.jsonl``.

A strategy that screens updates (``screen``, ``krum``, ``bulyan``, ``fltrust``, …) records
``screen.flagged`` (device ids: positions in ``devices.json``) on every round's line, and while
an attack runs also the round's ``tp``/``fp``/``fn`` and precision/recall/F1. The report's
section and plot both read that through :func:`screen_rounds`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

__all__ = ["ScreenRound", "device_name", "is_malicious", "number_or_none", "screen_rounds"]


@dataclass(frozen=True)
class ScreenRound:
    """One screened round.

    Attributes
    ----------
    round
        The round number.
    flagged
        The ids of the devices the strategy flagged.
    malicious, honest, unknown
        How many flagged devices were malicious (true positives), honest (false positives), or
        of no known role (no ``devices.json`` and no detection counts); they add up to
        ``len(flagged)``.
    devices
        How many devices took part in the round (its ``clients``), or None.
    recall
        The round's recall over its malicious devices, None while no attack runs.
    backdoor_success
        The backdoor's success rate on the round's global model, None when not measured.
    """

    round: int
    flagged: tuple[int, ...]
    malicious: int
    honest: int
    unknown: int
    devices: int | None
    recall: float | None
    backdoor_success: float | None


def screen_rounds(
    records: Sequence[dict[str, Any]], devices: Sequence[dict[str, Any]]
) -> list[ScreenRound]:
    """The rounds whose line has a ``screen`` entry, in file order (empty when none has).

    Flagged devices are split by the round's own ``tp`` count when it is recorded, else by
    their role in ``devices.json`` (any role but ``honest`` counts as malicious).
    """
    rounds: list[ScreenRound] = []
    for i, record in enumerate(records):
        entry = record.get("screen")
        if not isinstance(entry, dict):
            continue
        raw = entry.get("flagged")
        flagged = tuple(d for d in raw if _is_int(d)) if isinstance(raw, list) else ()
        tp = entry.get("tp")
        if _is_int(tp):
            malicious, unknown = min(tp, len(flagged)), 0
        elif devices:
            known = [d for d in flagged if 0 <= d < len(devices)]
            malicious = sum(is_malicious(devices[d]) for d in known)
            unknown = len(flagged) - len(known)
        else:
            malicious, unknown = 0, len(flagged)
        clients = record.get("clients")
        number = number_or_none(record.get("round"))
        rounds.append(
            ScreenRound(
                round=i + 1 if number is None else int(number),
                flagged=flagged,
                malicious=malicious,
                honest=len(flagged) - malicious - unknown,
                unknown=unknown,
                devices=clients if _is_int(clients) else None,
                recall=number_or_none(entry.get("recall")),
                backdoor_success=number_or_none(record.get("backdoor_success")),
            )
        )
    return rounds


def is_malicious(device: dict[str, Any]) -> bool:
    """Whether a ``devices.json`` entry has a role other than ``honest``."""
    return str(device.get("role", "honest")) != "honest"


def device_name(devices: Sequence[dict[str, Any]], device_id: int) -> str:
    """The ``devices.json`` name of a device id, or the id itself when it is not listed."""
    if 0 <= device_id < len(devices):
        return str(devices[device_id].get("device", device_id))
    return str(device_id)


def number_or_none(value: Any) -> float | None:
    """``value`` as a float if it is a finite (non-bool) number, else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _is_int(value: Any) -> TypeGuard[int]:
    """Whether ``value`` is a non-negative int (and not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
