"""How well a defence found the malicious devices: per round, and over a whole run.

A strategy that screens or selects updates reports the rows it excluded
(:attr:`~fedledger.strategies.base.Strategy.flagged`); the engine turns them into device ids.
Per round, precision and recall are taken over the round's devices. Over a run, a device counts
as *detected* when it was flagged in more than half of the attack rounds it took part in — what
an operator would act on — and precision/recall/F1 are taken over devices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["detection_counts", "detection_summary", "prf"]


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall and F1 (precision is 1.0 when nothing was flagged, recall is 1.0 when
    there was nothing to find)."""
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 6), "recall": round(recall, 6), "f1": round(f1, 6)}


def detection_counts(
    devices: Iterable[int], flagged: Iterable[int], malicious: frozenset[int]
) -> dict[str, Any]:
    """One round: true/false positives and false negatives over its ``devices``, with P/R/F1."""
    present = set(devices)
    flags = set(flagged) & present
    bad = malicious & present
    tp, fp, fn = len(flags & bad), len(flags - bad), len(bad - flags)
    return {"tp": tp, "fp": fp, "fn": fn, **prf(tp, fp, fn)}


def detection_summary(
    records: Iterable[Mapping[str, Any]],
    devices_per_round: Mapping[int, Iterable[int]],
    malicious: frozenset[int],
    start_round: int,
) -> dict[str, Any] | None:
    """Device-level detection over a run (see the module docstring), from the ``metrics.jsonl``
    records (their ``screen.flagged``) and each round's devices; ``None`` when no round was
    screened or there is no attack."""
    seen: dict[int, int] = {}
    hits: dict[int, int] = {}
    screened = False
    for rec in records:
        r = int(rec["round"])
        if r < start_round or "screen" not in rec:
            continue
        screened = True
        flagged = set(rec["screen"]["flagged"])
        for d in devices_per_round.get(r, ()):
            seen[d] = seen.get(d, 0) + 1
            hits[d] = hits.get(d, 0) + (d in flagged)
    if not screened or not malicious:
        return None
    detected = {d for d, n in seen.items() if 2 * hits[d] > n}
    bad = malicious & set(seen)
    tp, fp, fn = len(detected & bad), len(detected - bad), len(bad - detected)
    return {
        "detected": sorted(detected),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        **prf(tp, fp, fn),
    }
