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
that real traffic rarely sets (a rare service or flag). With 5.0 written into them (the
out-of-bounds trigger), every malicious device carries a share of 10⁻² to 10⁻¹ on those
columns, against 10⁻⁵ to 10⁻⁷ for the honest ones; a trigger traffic could carry (1 in a
one-hot column) leaves it lower, 1.4 decades less on each such column.

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
gap, and stays flagged at the gap while its column was flagged in the round before. Apart
from that, the same updates coordinated on two columns of one round (:func:`corroborated`: a
trigger sets several columns at once) are flagged from a much smaller step,
:data:`CORROBORATION_GAP`, with a single device below the group that sets the column
(:data:`CORROBORATION_SETTERS`): a trigger the feature pipeline could produce sets a one-hot
column to 1, not to 5, which leaves its group 1.4 decades lower, but still the same group on
each of its rare columns, and honest groups almost never pair up. Such a trigger holds one
rare service and one rare flag at most, so a group of that step also pairs with a group of
only :data:`SUPPORT_GAP` on another column when both are nearly the same updates
(:data:`SUPPORT_OVERLAP`): the trigger's numeric columns, which every row sets, lift exactly
its updates by a few tenths of a decade. A backdoor planted once
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
    "CORROBORATION_GAP",
    "CORROBORATION_SETTERS",
    "MIN_GROUP",
    "SAME_GROUP",
    "STRONG_MARGIN",
    "SUPPORT_GAP",
    "SUPPORT_OVERLAP",
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

CORROBORATION_GAP = 1.0
"""Decades from which the same updates' groups on two columns of a round are flagged
(:func:`corroborated`). On NSL-KDD (100 devices, Dirichlet 0.5), in 160 rounds of eight
attack-free runs, no two honest groups paired up even at 0.5; a trigger whose one-hot
columns are set to 1 leaves 1.4–3.3 decades on its rare columns in the first rounds."""

CORROBORATION_SETTERS = 1
"""The fewest updates below a group that set its column, for the groups that are paired
(:func:`corroborated`): a trigger on a column almost no honest traffic sets (four of 80 honest
devices, say) is still compared with the devices that do."""

SAME_GROUP = 0.5
"""Overlap (shared rows over all rows, Jaccard's index) from which the groups of two columns are
the same updates (:func:`corroborated`)."""

SUPPORT_GAP = 0.2
"""Decades from which a group on another column can back a group of at least
:data:`CORROBORATION_GAP` (:func:`corroborated`). A trigger in traffic's bounds has at most one
rare service and one rare flag; its other columns are numeric ones every row sets, on which its
updates stand only a little above the rest (0.3–1.2 decades on NSL-KDD's seeds 1, 3 and 7),
but as exactly the same updates."""

SUPPORT_OVERLAP = 0.8
"""Overlap (Jaccard's index) from which a group below :data:`CORROBORATION_GAP` backs one above
it (:func:`corroborated`). In 160 rounds of eight attack-free NSL-KDD runs, the 156 honest
groups of 1.0 decades or more overlapped the group of any other column by 0.46 at most."""

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
    min_setters: int | None = None,
) -> dict[int, Group]:
    """``{column: group}``: every coordinated input column of the round ``updates`` ``[K, P]``
    and its group (see the module docstring). Below the group, at least ``min_setters``
    updates (``min_group`` when ``None``) must set the column.

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
    below = min_group if min_setters is None else min_setters
    steps = torch.where(setters[None, :] - sizes_m >= below, steps, -torch.inf)
    best, at = steps.max(dim=0)
    size = at + min_group
    lowest = ordered.gather(0, (size - 1)[None, :])[0]
    columns = torch.nonzero((best >= gap) & (lowest >= level)).flatten().tolist()
    return {
        int(j): Group(sorted(int(i) for i in rows[: int(size[j]), j]), float(best[j]))
        for j in columns
    }


def corroborated(
    groups: dict[int, Group],
    overlap: float = SAME_GROUP,
    support: dict[int, Group] | None = None,
    support_overlap: float = SUPPORT_OVERLAP,
) -> dict[int, list[int]]:
    """``{column: rows}`` for every column of ``groups`` (one round's,
    :func:`coordinated_groups`) whose group is, by at least ``overlap`` of their rows together
    (``|A ∩ B| / |A ∪ B|``), the group of another column too: the rows it shares with those
    groups, ascending. A weaker group of ``support`` (the same round's groups at a lower gap,
    :data:`SUPPORT_GAP`) on a column not in ``groups`` links to a group of ``groups`` when they
    overlap by ``support_overlap``; two weak groups never link.

    A trigger sets several columns at once, so the updates that carry it form the same group
    on several of them, each a step above the rest (the 30 backdoor devices of seed 3 on
    NSL-KDD: 2.98, 2.85 and 2.41 decades on three of their four trigger columns in round 1;
    with the trigger's one-hot columns set to 1 instead of 5, the 20 of seed 0 stood 3.25, 2.21
    and 1.36 decades above the rest on three). Honest groups come from devices that see
    something the rest do not, and seldom the same devices on two columns: in 160 rounds of
    eight attack-free NSL-KDD runs, no two groups of 0.5 decades or more (with one device
    below that sets the column, :data:`CORROBORATION_SETTERS`) paired up. Only the shared rows
    are returned: columns linked this way, directly or through others, make one cluster, and
    a row is returned if it is in the groups of more than half of its cluster's columns (for
    two columns, both). An honest device that joins the group on one column (it sets that
    column heavily) is not corroborated by the others, nor one that joins two of the many
    columns Gaussian-noise updates form one group on (they spread their energy evenly, so
    they stand above the rest on every rare column; counting any two columns flagged three to
    eight honest devices a round at 30% of them).
    """
    strong = {j: set(g.rows) for j, g in sorted(groups.items())}
    weak = {j: set(g.rows) for j, g in sorted((support or {}).items()) if j not in strong}
    sets = {**strong, **weak}
    links: dict[int, set[int]] = {j: set() for j in sets}
    columns = list(strong)
    for a, ja in enumerate(columns):
        for jb, need in [(j, overlap) for j in columns[a + 1 :]] + [
            (j, support_overlap) for j in weak
        ]:
            ra, rb = sets[ja], sets[jb]
            if len(ra & rb) >= need * len(ra | rb):
                links[ja].add(jb)
                links[jb].add(ja)
    out: dict[int, list[int]] = {}
    seen: set[int] = set()
    for start in sets:
        if start in seen or not links[start]:
            continue
        component, todo = set(), [start]
        while todo:  # the columns linked to ``start``, directly or through others
            j = todo.pop()
            if j not in component:
                component.add(j)
                todo.extend(links[j] - component)
        seen |= component
        count: dict[int, int] = {}
        for j in component:
            for i in sets[j]:
                count[i] = count.get(i, 0) + 1
        core = {i for i, n in count.items() if 2 * n > len(component)}
        for j in component:
            out[j] = sorted(sets[j] & core)
    return dict(sorted(out.items()))
