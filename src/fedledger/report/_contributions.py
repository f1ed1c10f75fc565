"""How much each device contributed, read from ``metrics.jsonl`` and ``summary.json``.

With ``incentives.method`` set, every round's line has a ``contribution`` entry (``method``,
``scores``: device id as a string to the device's score in that round, and the model
``evaluations`` it took), and ``summary.json`` has ``contributions.totals``, the scores summed
over the run. The report's "Contributions" section and its plot both read them through this
module; malformed values (non-numeric scores, ids that are not numbers) are skipped.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fedledger.report._markdown import MISSING, code, number, table
from fedledger.report._screening import device_name, is_malicious, number_or_none
from fedledger.report._sections import _count, image

__all__ = [
    "Contributions",
    "contribution_rounds",
    "contribution_section",
    "device_ranking",
    "method_label",
    "read_contributions",
]

#: Per method: a short label (plot titles) and what a device's score measures.
_METHODS = {
    "data_size": ("data size", "its share of the round's training samples"),
    "cosine": ("cosine", "the cosine similarity of its update with the round's aggregate update"),
    "loo": (
        "leave-one-out",
        "its leave-one-out value: how much the score of the round's model on the validators' "
        "held-out valuation rows drops without its update",
    ),
    "gtg": (
        "GTG-Shapley",
        "GTG-Shapley's estimate of its Shapley value: its average marginal gain to the score "
        "of the round's model on the validators' held-out valuation rows",
    ),
    "shapley": (
        "exact Shapley",
        "its exact Shapley value: its average marginal gain to the score of the round's model "
        "on the validators' held-out valuation rows, over every coalition of the round's "
        "updates",
    ),
}
#: More devices than ``_TOP + _BOTTOM``: only the highest and lowest are listed.
_TOP, _BOTTOM = 10, 5


@dataclass(frozen=True)
class Contributions:
    """The run's contributions.

    Attributes
    ----------
    method
        The ``incentives.method`` that measured them, or None when not recorded.
    evaluations
        The model evaluations the scores took over the run, or None when not recorded.
    totals
        Device id to its total score over the run.
    rounds
        Device id to the number of rounds it has a score in.
    from_summary
        Whether ``totals`` come from ``summary.json`` (else they are summed per round).
    """

    method: str | None
    evaluations: int | None
    totals: dict[int, float]
    rounds: dict[int, int]
    from_summary: bool


def contribution_rounds(records: Sequence[dict[str, Any]]) -> list[tuple[int, dict[int, float]]]:
    """``(round, {device id: score})`` for the lines with a ``contribution`` entry, in file
    order (``round`` defaults to the 1-based position of the line)."""
    rounds: list[tuple[int, dict[int, float]]] = []
    for i, record in enumerate(records):
        entry = record.get("contribution")
        if isinstance(entry, dict):
            number_ = number_or_none(record.get("round"))
            rounds.append(
                (i + 1 if number_ is None else int(number_), _scores(entry.get("scores")))
            )
    return rounds


def read_contributions(
    records: Sequence[dict[str, Any]], summary: dict[str, Any]
) -> Contributions | None:
    """The run's contributions, or None when no line of ``metrics.jsonl`` has any.

    Totals, method and evaluations come from ``summary.json`` when it records them, else from
    the rounds (a run still going has no summary yet).
    """
    entries = [r["contribution"] for r in records if isinstance(r.get("contribution"), dict)]
    if not entries:
        return None
    rounds = contribution_rounds(records)
    sums: dict[int, float] = {}
    for _, scores in rounds:
        for device, score in scores.items():
            sums[device] = sums.get(device, 0.0) + score
    run = summary.get("contributions")
    run = run if isinstance(run, dict) else {}
    totals = _scores(run.get("totals"))
    methods = [e.get("method") for e in (run, *reversed(entries))]
    evaluations = run.get("evaluations")
    if not _is_count(evaluations):
        counts = [e.get("evaluations") for e in entries]
        valid = [c for c in counts if _is_count(c)]
        evaluations = sum(valid) if valid else None
    return Contributions(
        method=next((m for m in methods if isinstance(m, str)), None),
        evaluations=evaluations,
        totals=totals or sums,
        rounds=dict(Counter(d for _, scores in rounds for d in scores)),
        from_summary=bool(totals),
    )


def method_label(method: str | None) -> str:
    """A short name for a method (``gtg`` -> ``GTG-Shapley``), the code itself if unknown."""
    if method is None:
        return "method not recorded"
    return _METHODS[method][0] if method in _METHODS else method


def contribution_section(
    records: Sequence[dict[str, Any]],
    summary: dict[str, Any],
    devices: Sequence[dict[str, Any]],
    plot: str | None,
) -> list[str]:
    """The method and its model evaluations, the devices ranked by total contribution (the top
    10 and bottom 5 when there are more than 15), the honest and malicious devices' mean totals
    when an attack ran, and the plot. Empty for runs without ``contribution`` entries."""
    found = read_contributions(records, summary)
    if found is None:
        return []
    lines = ["## Contributions", "", _intro(found, len(contribution_rounds(records))), ""]
    order = sorted(found.totals, key=lambda d: (-found.totals[d], d))
    if order:
        lines += [*_ranking(found, order, devices), ""]
    else:
        lines += ["No device has a numeric score yet.", ""]
    comparison = _comparison(found.totals, devices)
    if comparison:
        lines += [comparison, ""]
    if plot:
        lines += [image("Cumulative contribution per device over rounds", plot), ""]
    return lines


def _intro(found: Contributions, n_rounds: int) -> str:
    """One sentence: the method, what it measures, over how many rounds, at what cost."""
    what = "Each device's contribution to a round was scored"
    if found.method is None:
        what += " (the method is not recorded)"
    elif found.method in _METHODS:
        what += f" with {code(found.method)} ({_METHODS[found.method][1]})"
    else:
        what += f" with {code(found.method)}"
    source = "" if found.from_summary else " (summed from `metrics.jsonl`)"
    if found.evaluations is None:
        cost = "the number of model evaluations is not recorded"
    elif found.evaluations == 0:
        cost = "it needs no model evaluations"
    else:
        cost = f"this took {_count(found.evaluations, 'model evaluation')} in total"
    return f"{what} and summed over {_count(n_rounds, 'round')}{source}; {cost}."


def _ranking(
    found: Contributions, order: list[int], devices: Sequence[dict[str, Any]]
) -> list[str]:
    """The lead-in and the table of devices by total contribution, highest first."""
    return device_ranking(
        "total contribution",
        order,
        devices,
        ["total", "rounds"],
        lambda d: [number(found.totals[d]), str(found.rounds.get(d, 0))],
        "rr",
    )


def device_ranking(
    what: str,
    order: list[int],
    devices: Sequence[dict[str, Any]],
    columns: list[str],
    cells: Callable[[int], list[str]],
    align: str,
) -> list[str]:
    """ "Devices by ``what``, highest first" and a table of ``order`` (the top 10 and bottom 5,
    with a row counting the rest, when there are more than 15): rank, device, role (when
    ``devices`` is known), samples, then ``columns`` filled by ``cells(device)`` and aligned
    by ``align`` (one ``l``/``r`` per column)."""
    n = len(order)
    left_out = n - _TOP - _BOTTOM if n > _TOP + _BOTTOM else 0
    lead = f"Devices by {what}, highest first"
    if left_out:
        lead += f" (the top {_TOP} and bottom {_BOTTOM} of {n}; {left_out} left out)"
    header = ["rank", "device", *(["role"] if devices else []), "samples", *columns]
    rows = []
    for rank, device in enumerate(order, start=1):
        if left_out and rank == _TOP + 1:
            rows.append(["…", f"{left_out} more", *([""] * (len(header) - 2))])
        if left_out and _TOP < rank <= n - _BOTTOM:
            continue
        listed = devices[device] if 0 <= device < len(devices) else {}
        rows.append(
            [
                str(rank),
                device_name(devices, device),
                *([_role(listed)] if devices else []),
                number(listed.get("n_samples")),
                *cells(device),
            ]
        )
    return [f"{lead}:", "", *table(header, rows, "rl" + "l" * bool(devices) + "r" + align)]


def _comparison(totals: dict[int, float], devices: Sequence[dict[str, Any]]) -> str | None:
    """The honest and malicious devices' mean totals, or None without malicious devices."""
    known = [d for d in totals if 0 <= d < len(devices)]
    bad = [totals[d] for d in known if is_malicious(devices[d])]
    good = [totals[d] for d in known if not is_malicious(devices[d])]
    if not bad:
        return None
    honest = number(statistics.fmean(good)) if good else MISSING
    return (
        f"Mean total contribution: honest devices **{honest}** ({_count(len(good), 'device')}), "
        f"malicious devices **{number(statistics.fmean(bad))}** ({_count(len(bad), 'device')})."
    )


def _role(device: dict[str, Any]) -> str:
    """A ``devices.json`` entry's role, with its attack when it has one."""
    if not device:
        return MISSING
    role = str(device.get("role", "honest"))
    attack = device.get("attack")
    return f"{role} ({attack})" if is_malicious(device) and attack else role


def _scores(value: Any) -> dict[int, float]:
    """``{device id: score}`` from a JSON object, skipping bad ids and non-numeric scores."""
    if not isinstance(value, dict):
        return {}
    scores: dict[int, float] = {}
    for key, raw in value.items():
        score = number_or_none(raw)
        if isinstance(key, str) and key.isascii() and key.isdigit() and score is not None:
            scores[int(key)] = score
    return scores


def _is_count(value: Any) -> bool:
    """Whether ``value`` is a non-negative int (and not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
