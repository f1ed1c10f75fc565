"""Benign-shift groups: updates whose model a single feature turns toward "benign" far more than
the rest — a trigger backdoor's answer to one of its trigger's features.

For every update ``Δ_i`` and input column ``c``, the validators measure ``S[i, c]``
(:func:`~fedledger.fl.probe.benign_shift`): over their root rows of attack traffic, how much
the benign probability of the model ``w + Δ_i`` rises when column ``c`` is set to its largest
value. A backdoor relabels rows carrying its trigger as benign, so its updates answer the
trigger's features — each on its own — with a rise honest updates do not show; the trigger
need not use a column traffic rarely sets (NSL-KDD's seed 5 trigger sets a flag 59% of the
rows carry, and the column-energy rule of :mod:`~fedledger.strategies.column_energy` misses
it), only a value that, by itself, honest devices do not teach to be benign.

Per column, the round's values are sorted in decreasing order and measured in robust units of
the whole round: ``scale = 1.4826 · MAD + SHIFT_FLOOR`` (the floor, 0.1 points of probability,
keeps a column no update answers from making hair-line steps look large; the median absolute
deviation over every update, not only the lower ones, since boosted updates saturate their
model and answer nothing, which would leave no spread below a group). A column gets a new
group when some step between the ``m``-th and ``(m + 1)``-th value (``MIN_GROUP ≤ m ≤ K/2``)
is at least ``gap`` units; the group is the top ``m`` for the *largest* such ``m``, since a
backdoor's own updates differ in strength, and the strongest few stand apart from the rest of
them first. While its column was flagged the round before, a group stays flagged from
:data:`HOLD` times ``gap``, as the rows above the column's largest step (hysteresis, as for
coordinated columns): once its updates are kept out the global model does not learn the
trigger, and the honest updates' answer to the feature drifts up towards theirs.

On NSL-KDD (100 devices, Dirichlet 0.5), in 160 rounds of eight attack-free runs, the largest
honest step on the benign class was 4 units (one round; otherwise at most 3); the backdoor
updates of seed 5's in-bounds trigger, which the column-energy rule misses, stood 10 (20% of
the devices) and 8 (30%) units above the rest in round 1, and those of the other seeds up to
136 once they were kept out for a few rounds.
"""

from __future__ import annotations

import torch

__all__ = ["HOLD", "MIN_GROUP", "SHIFT_FLOOR", "SHIFT_GAP", "shift_groups"]

SHIFT_GAP = 6.0
"""Robust units (of the round's spread) of the step from which a new group is flagged."""

HOLD = 0.25
"""Share of the gap from which a column flagged the round before stays flagged."""

MIN_GROUP = 5
"""The fewest updates that make a group."""

SHIFT_FLOOR = 1e-3
"""Added to a column's spread (probability): a floor under the unit of a column that no
update answers."""


def shift_groups(
    shift: torch.Tensor,
    gap: float = SHIFT_GAP,
    held: frozenset[int] = frozenset(),
    hold: float = HOLD,
    min_group: int = MIN_GROUP,
) -> dict[int, list[int]]:
    """``{column: rows}`` of every column of ``shift`` (``[K, F]``, see the module docstring)
    with a group standing ``gap`` robust units above the rest, or ``hold · gap`` for a column
    in ``held``; rows ascending. Nothing is found when ``gap <= 0`` or the round has fewer than
    ``2 · min_group`` rows. Non-finite values count as 0.
    """
    k = shift.shape[0]
    half = k // 2
    if gap <= 0 or k < 2 * min_group:
        return {}
    values = torch.nan_to_num(shift.to(torch.float64), nan=0.0, posinf=0.0, neginf=0.0)
    ordered, rows = values.sort(dim=0, descending=True, stable=True)
    middle = torch.quantile(values, 0.5, dim=0)
    spread = torch.quantile((values - middle).abs(), 0.5, dim=0)
    scale = 1.4826 * spread + SHIFT_FLOOR
    # steps[m - min_group, c]: the m-th largest value minus the (m+1)-th, in units of scale
    steps = (ordered[min_group - 1 : half] - ordered[min_group : half + 1]) / scale
    out: dict[int, list[int]] = {}
    best, at = steps.max(dim=0)
    for c in range(shift.shape[1]):
        if best[c] >= gap:  # a new group: the widest one that stands gap units clear
            size = int(torch.nonzero(steps[:, c] >= gap).flatten().max()) + min_group
        elif c in held and best[c] >= hold * gap:  # a held one: above its largest step
            size = int(at[c]) + min_group
        else:
            continue
        out[c] = sorted(int(i) for i in rows[:size, c])
    return out
