"""Coordinated input columns: a group of updates that all pour their first-layer change into an
input column the others barely touch — the trace a trigger backdoor leaves.

Rieger, Nguyen, Miettinen, Sadeghi, NDSS 2022, "DeepSight: Mitigating Backdoor Attacks in
Federated Learning Through Deep Model Inspection", classify updates by the *normalised energy*
of their parameter changes per output neuron: a model trained on the homogeneous data of a
backdoor concentrates it. This module applies the same measure to the other end of the network.
For a first layer with weights ``W`` of shape ``[H, F]`` (``H`` the size of its bias, ``F``
its input columns), the update ``Δ_i`` puts the share

    e_ij = Σ_h ΔW_i[h, j]² / Σ_{h, j'} ΔW_i[h, j']²

of its first-layer energy on input column ``j``. A device's share of column ``j`` is roughly
how often, and how strongly, column ``j`` is set in the rows it trained on, weighted by the
error the model makes on them. A backdoor stamps a trigger (a few columns set to a fixed value)
on a large part of every malicious device's rows, and the trigger columns are typically ones
that real traffic rarely sets (a rare service or flag). So every malicious device carries a
share of 10⁻² to 10⁻¹ on those columns, against 10⁻⁵ to 10⁻⁷ for the honest ones.

A column is *coordinated* when, sorting the round's ``log₁₀ e_ij`` in decreasing order, some
group of the top ``m`` updates (``min_group ≤ m ≤ K/2``) sits at least ``gap`` decades above
the next one, with the group's lowest share at least ``10^level``, and with at least
``min_group`` updates below the group that do set the column (a share above 0). Every update
in such a group is a suspect. A device whose traffic never sets a column has exactly no change
there, so a column only some devices see would otherwise look like a trigger with a gap of a
dozen decades; what the group is compared with must be devices that have the column and barely
use it, as honest devices do with a rare service (24 to 57 of the 70 honest devices on the
trigger columns of NSL-KDD). Honest non-IID devices do form groups on columns only some of them see,
but either the step down to the rest is smaller (about two decades on NSL-KDD, reaching 2.5
in a few rounds, three times in one run of twenty) or the group carries too little energy
there to pass ``level``. A backdoor must be planted round after round, so the screen
(:class:`~fedledger.strategies.screen.AnomalyScreen`) flags a group with hysteresis, as a
Schmitt trigger switches: it enters when it stands :data:`STRONG_MARGIN` decades beyond the
gap or when the same updates are coordinated on another column of the round too
(:func:`corroborated`: a trigger sets several columns at once; then the updates in both
groups are flagged), and stays flagged at the gap while its column was flagged in the round
before. A backdoor planted once
lasts (honest updates hardly touch columns honest traffic does not set), so its first round
must not get through. Scaling an update
does not change its shares, so sign flipping and boosting are left to the other
fingerprints; Gaussian noise spreads evenly (share ``≈ 1/F``) and so shows up as a group on
rare columns too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "COLUMN_GAP",
    "COLUMN_LEVEL",
    "MIN_GROUP",
    "SAME_GROUP",
    "STRONG_MARGIN",
    "Group",
    "coordinated_groups",
    "corroborated",
    "first_layer",
]

COLUMN_GAP = 2.5
"""Decades between a coordinated group's lowest share and the next update's."""

COLUMN_LEVEL = -3.0
"""log₁₀ of the least share of its first-layer energy each update of a group puts on the
column."""

MIN_GROUP = 5
"""The fewest updates that make a coordinated group."""

STRONG_MARGIN = 0.5
"""Decades beyond the gap at which a group gets flagged when its column was not flagged the
round before (then the gap itself is enough)."""

SAME_GROUP = 0.5
"""Overlap (shared rows over all rows, Jaccard's index) from which the groups of two columns are
the same updates (:func:`corroborated`)."""

_FLOOR = 1e-12  # a share of exactly 0 counts as 10⁻¹² (12 decades down)
ABSENT = -11.5  # log₁₀ shares at or below this are exact zeros (a column never set)


def first_layer(sizes: tuple[int, ...]) -> tuple[int, int] | None:
    """``(H, F)`` when the flat vector starts with a dense layer's ``[H, F]`` weights followed
    by its ``[H]`` bias (``sizes[0] = H · F``, ``sizes[1] = H``), else ``None``."""
    if len(sizes) < 2 or sizes[1] <= 0 or sizes[0] % sizes[1]:
        return None
    h = sizes[1]
    f = sizes[0] // h
    return (h, f) if f > 1 else None


@dataclass(frozen=True)
class Group:
    """A coordinated group on one input column: its rows (sorted) and its gap in decades."""

    rows: list[int]
    gap: float


def coordinated_groups(
    updates: torch.Tensor,
    sizes: tuple[int, ...],
    gap: float = COLUMN_GAP,
    level: float = COLUMN_LEVEL,
    min_group: int = MIN_GROUP,
) -> dict[int, Group]:
    """``{column: group}``: every coordinated input column of the round ``updates`` ``[K, P]``
    and its group (see the module docstring).

    Nothing is found when ``gap <= 0``, when the model does not start with a dense layer
    (:func:`first_layer`), or when a round has fewer than ``2 · min_group`` rows.
    """
    k = updates.shape[0]
    shape = first_layer(sizes)
    if gap <= 0 or shape is None or k < 2 * min_group:
        return {}
    h, f = shape
    w = updates[:, : h * f].to(torch.float64).reshape(k, h, f)
    energy = (w**2).sum(dim=1)
    total = energy.sum(dim=1, keepdim=True)
    share = torch.where(total > 0, energy / total.clamp_min(1e-300), torch.zeros_like(energy))
    logs = torch.log10(share + _FLOOR)
    ordered, rows = logs.sort(dim=0, descending=True, stable=True)
    half = k // 2
    # steps[m - min_group, j]: log share of the m-th largest minus the (m+1)-th, m ≥ min_group
    steps = ordered[min_group - 1 : half] - ordered[min_group : half + 1]
    # below the group, at least min_group devices that set the column (a share above 0) must
    # show what ordinary use of it looks like: a column only some devices' traffic has, with
    # the rest at exactly 0, is no sign of a trigger
    setters = (logs > ABSENT).sum(dim=0)
    sizes_m = torch.arange(min_group, half + 1)[:, None]
    steps = torch.where(setters[None, :] - sizes_m >= min_group, steps, -torch.inf)
    best, at = steps.max(dim=0)
    size = at + min_group
    lowest = ordered.gather(0, (size - 1)[None, :])[0]
    columns = torch.nonzero((best >= gap) & (lowest >= level)).flatten().tolist()
    return {
        int(j): Group(sorted(int(i) for i in rows[: int(size[j]), j]), float(best[j]))
        for j in columns
    }


def corroborated(groups: dict[int, Group], overlap: float = SAME_GROUP) -> dict[int, list[int]]:
    """``{column: rows}`` for every column of ``groups`` (one round's,
    :func:`coordinated_groups`) whose group is, by at least ``overlap`` of their rows together
    (``|A ∩ B| / |A ∪ B|``), the group of another column too: the rows it shares with those
    groups, ascending.

    A trigger sets several columns at once, so the updates that carry it form the same group
    on several of them, each a fair step above the rest (the 30 backdoor devices of seed 3 on
    NSL-KDD: 2.98, 2.85 and 2.41 decades on three of their four trigger columns in round 1).
    Honest groups come from devices that see something the rest do not, and rarely get that
    far: in 160 rounds of eight attack-free NSL-KDD runs, six crossed 2.5 decades, never two in
    one round. Only the shared rows are returned: an honest device that joins the group on one
    column (it sets that column heavily) is not corroborated by the others.
    """
    sets = [(j, set(g.rows)) for j, g in sorted(groups.items())]
    shared: dict[int, set[int]] = {}
    for a, (ja, ra) in enumerate(sets):
        for jb, rb in sets[a + 1 :]:
            both = ra & rb
            if len(both) >= overlap * len(ra | rb):
                shared.setdefault(ja, set()).update(both)
                shared.setdefault(jb, set()).update(both)
    return {j: sorted(rows) for j, rows in sorted(shared.items())}
