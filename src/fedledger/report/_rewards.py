"""The tokens each device was paid, read from ``metrics.jsonl`` and ``summary.json``.

With rewards on, every round's line has a ``rewards`` entry (the tokens ``paid`` per device id
as a string, ``free_riders``, ``excluded``, ``settled``, absent without a ledger, and
``detection`` when the free-rider attack ran), and ``summary.json`` has the run's ``rewards``
(``pool``, ``paid``, ``balances``, ``stakes``, ``excluded``, ``free_rider_rounds``). The
report's "Rewards" section and its plot both read them here; malformed values are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fedledger.report._contributions import _is_count, _scores, device_ranking
from fedledger.report._markdown import number
from fedledger.report._screening import is_malicious, number_or_none
from fedledger.report._sections import _count, image

__all__ = ["RewardRound", "Rewards", "read_rewards", "reward_rounds", "rewards_section"]

#: More devices than ``_TOP + _BOTTOM``: only the highest and lowest balances are listed.
_TOP, _BOTTOM = 10, 5
#: Unsettled rounds named in the intro before the rest are only counted.
_MAX_NAMED_ROUNDS = 10
_COUNTS = ("tp", "fp", "fn")


@dataclass(frozen=True)
class RewardRound:
    """One line's ``rewards`` entry: its ``round`` (1-based line position when absent), whether
    it ``settled`` (true when not recorded), the tokens ``paid`` (none when it did not settle)
    and kind of free riding per device id, the devices ``excluded`` and the free-rider
    ``detection`` counts (``tp``, ``fp``, ``fn``) when recorded."""

    round: int
    settled: bool
    paid: dict[int, float]
    free_riders: dict[int, str]
    excluded: list[int]
    detection: dict[str, int] | None


@dataclass(frozen=True)
class Rewards:
    """The run's rewards: its ``rounds``, the tokens ``paid`` in all, the ``pool`` per round
    (None when not recorded), each device id's final balance and stake (no stakes when not
    recorded), rounds caught free riding and exclusion, the malicious devices' share of the
    tokens when ``summary.json`` has it, the free-rider detection (precision, recall, F1 and,
    when known, ``tp``, ``fp``, ``fn``; None when it did not run), and whether ``paid`` comes
    from ``summary.json`` (else it is summed over the settled rounds)."""

    rounds: list[RewardRound]
    paid: float
    pool: float | None
    balances: dict[int, float]
    stakes: dict[int, float]
    free_rider_rounds: dict[int, int]
    excluded: set[int]
    malicious_share: float | None
    detection: dict[str, float] | None
    from_summary: bool


def reward_rounds(records: Sequence[dict[str, Any]]) -> list[RewardRound]:
    """The lines with a ``rewards`` entry, in file order; an unsettled round pays nothing."""
    rounds: list[RewardRound] = []
    for i, record in enumerate(records):
        entry = record.get("rewards")
        if not isinstance(entry, dict):
            continue
        number_ = number_or_none(record.get("round"))
        settled = entry.get("settled", True) is True
        riders = entry.get("free_riders")
        riders = riders if isinstance(riders, dict) else {}
        detection = entry.get("detection")
        counts = _counts(detection) if isinstance(detection, dict) else None
        rounds.append(
            RewardRound(
                round=i + 1 if number_ is None else int(number_),
                settled=settled,
                paid=_scores(entry.get("paid")) if settled else {},
                free_riders={
                    int(k): v for k, v in riders.items() if _is_id(k) and isinstance(v, str)
                },
                excluded=sorted(_device_list(entry.get("excluded"))) if settled else [],
                detection=counts,
            )
        )
    return rounds


def read_rewards(records: Sequence[dict[str, Any]], summary: dict[str, Any]) -> Rewards | None:
    """The run's rewards, or None when no line of ``metrics.jsonl`` has any.

    Totals come from ``summary.json`` when it records them, else from the rounds (a run still
    going has no summary yet).
    """
    rounds = reward_rounds(records)
    if not rounds:
        return None
    run = summary.get("rewards")
    run = run if isinstance(run, dict) else {}
    sums: dict[int, float] = {}
    riders: dict[int, int] = {}
    for entry in rounds:
        for device, amount in entry.paid.items():
            sums[device] = sums.get(device, 0.0) + amount
        for device in entry.free_riders:
            riders[device] = riders.get(device, 0) + 1
    balances = _scores(run.get("balances")) or sums
    paid = number_or_none(run.get("paid"))
    counted = run.get("free_rider_rounds")
    excluded = run.get("excluded")
    return Rewards(
        rounds=rounds,
        paid=sum(balances.values()) if paid is None else paid,
        pool=number_or_none(run.get("pool")),
        balances=balances,
        stakes=_scores(run.get("stakes")),
        free_rider_rounds=(
            {int(k): v for k, v in counted.items() if _is_id(k) and _is_count(v)}
            if isinstance(counted, dict)
            else riders
        ),
        excluded=(
            _device_list(excluded)
            if isinstance(excluded, list)
            else {d for entry in rounds for d in entry.excluded}
        ),
        malicious_share=number_or_none(run.get("malicious_share")),
        detection=_read_detection(run.get("free_rider_detection"), rounds),
        from_summary=paid is not None,
    )


def rewards_section(
    records: Sequence[dict[str, Any]],
    summary: dict[str, Any],
    devices: Sequence[dict[str, Any]],
    plot: str | None,
) -> list[str]:
    """The tokens paid, the malicious devices' share of them and the free-rider detection when
    an attack ran, the devices ranked by final balance (the top 10 and bottom 5 when there are
    more than 15), and the plot. Empty for runs without ``rewards`` entries."""
    found = read_rewards(records, summary)
    if found is None:
        return []
    lines = ["## Rewards", "", _intro(found, devices), ""]
    for sentence in (_share(found, devices), _detection(found.detection)):
        if sentence:
            lines += [sentence, ""]
    ids = set(found.balances) | set(found.free_rider_rounds) | found.excluded
    ids |= set(range(len(devices)))
    order = sorted(ids, key=lambda d: (-found.balances.get(d, 0.0), d))
    if order:
        lines += [*_ranking(found, order, devices), ""]
    if plot:
        lines += [image("Cumulative rewards per device over rounds", plot), ""]
    return lines


def tokens(value: float) -> str:
    """A token amount: whole numbers without decimals, others with two."""
    return str(int(value)) if float(value).is_integer() else number(float(value), 2)


def _intro(found: Rewards, devices: Sequence[dict[str, Any]]) -> str:
    """One sentence: the tokens paid, over how many rounds, to how many devices."""
    text = f"Devices were paid **{tokens(found.paid)} tokens** over "
    text += _count(len(found.rounds), "round")
    if found.pool is not None:
        text += f" (a pool of {tokens(found.pool)} tokens per round)"
    if not found.from_summary:
        text += " (summed from `metrics.jsonl`)"
    n_paid = sum(1 for v in found.balances.values() if v > 0)
    n_devices = max(len(devices), len(found.balances))
    text += f"; {n_paid} of {_count(n_devices, 'device')}" if n_paid else "; no device"
    text += " received tokens"
    unsettled = [entry.round for entry in found.rounds if not entry.settled]
    if unsettled:
        named = ", ".join(map(str, unsettled[:_MAX_NAMED_ROUNDS]))
        named += ", …" if unsettled[_MAX_NAMED_ROUNDS:] else ""
        text += (
            f"; {_count(len(unsettled), 'round')} did not settle ({named}), "
            f"so nothing was paid for {'it' if len(unsettled) == 1 else 'them'}"
        )
    return f"{text}."


def _share(found: Rewards, devices: Sequence[dict[str, Any]]) -> str | None:
    """The malicious devices' share of the tokens against their share of the devices, or
    None without malicious devices."""
    bad = [d for d, device in enumerate(devices) if is_malicious(device)]
    if not bad:
        return None
    share = found.malicious_share
    if share is None:
        taken = sum(found.balances.get(d, 0.0) for d in bad)
        share = taken / found.paid if found.paid > 0 else 0.0
    who = "device" if len(bad) == 1 else "devices"
    return (
        f"The {len(bad)} malicious {who} ({_percent(len(bad) / len(devices))} of the "
        f"{_count(len(devices), 'device')}) received **{_percent(share)}** of the tokens paid."
    )


def _detection(detection: dict[str, float] | None) -> str | None:
    """Precision, recall and F1 of the free-rider detection, or None when it did not run."""
    if detection is None:
        return None
    text = (
        f"Free-rider detection over device-rounds: precision **{number(detection['precision'])}"
        f"**, recall **{number(detection['recall'])}**, F1 **{number(detection['f1'])}**"
    )
    if all(k in detection for k in _COUNTS):
        caught, wrong, missed = (int(detection[k]) for k in _COUNTS)
        text += f" ({caught} caught, {_count(wrong, 'false alarm')}, {missed} missed)"
    return f"{text}."


def _ranking(found: Rewards, order: list[int], devices: Sequence[dict[str, Any]]) -> list[str]:
    """The lead-in and the table of devices by final balance, highest first."""
    staked = bool(found.stakes)

    def cells(device: int) -> list[str]:
        stake = found.stakes.get(device)
        return [
            tokens(found.balances.get(device, 0.0)),
            *([number(None) if stake is None else tokens(stake)] if staked else []),
            str(found.free_rider_rounds.get(device, 0)),
            "yes" if device in found.excluded else "",
        ]

    columns = ["balance", *(["stake"] if staked else []), "rounds free riding", "excluded"]
    return device_ranking(
        "final balance", order, devices, columns, cells, "r" + "r" * staked + "rl"
    )


def _is_id(key: Any) -> bool:
    """Whether a JSON key is a device id (a string of ASCII digits)."""
    return isinstance(key, str) and key.isascii() and key.isdigit()


def _device_list(value: Any) -> set[int]:
    """The device ids in a JSON list, skipping anything that is not one."""
    return {d for d in value if _is_count(d)} if isinstance(value, list) else set()


def _counts(value: dict[str, Any]) -> dict[str, int] | None:
    """``tp``, ``fp`` and ``fn`` of a detection entry, or None when one is not a count."""
    counts: list[Any] = [value.get(k) for k in _COUNTS]
    return dict(zip(_COUNTS, counts, strict=True)) if all(map(_is_count, counts)) else None


def _read_detection(value: Any, rounds: list[RewardRound]) -> dict[str, float] | None:
    """The summary's free-rider detection (its rates, else worked out from its counts), else
    the rounds' counts summed, or None when nothing recorded any."""
    if isinstance(value, dict):
        rates = {k: number_or_none(value.get(k)) for k in ("precision", "recall", "f1")}
        counts = _counts(value)
        if all(v is not None for v in rates.values()):
            return {**(counts or {}), **{k: v for k, v in rates.items() if v is not None}}
        if counts is not None:
            return _prf(counts)
    found = [entry.detection for entry in rounds if entry.detection is not None]
    return _prf({k: sum(c[k] for c in found) for k in _COUNTS}) if found else None


def _prf(counts: dict[str, int]) -> dict[str, float]:
    """``counts`` with precision, recall and F1 (precision is 1 when nothing was flagged,
    recall is 1 when there was nothing to find), as the engine computes them."""
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {**counts, "precision": precision, "recall": recall, "f1": f1}


def _percent(share: float) -> str:
    """A share as a percentage with one decimal."""
    return f"{100 * share:.1f}%"
