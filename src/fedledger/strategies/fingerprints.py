"""Statistical fingerprints of a round's updates and their unsupervised outlier score: what the
anomaly screen (:mod:`fedledger.strategies.screen`) flags updates on."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "FINGERPRINTS",
    "MAD_SCALE",
    "OUTPUT_CAP",
    "TIE",
    "Family",
    "family_scores",
    "fingerprints",
    "outlier_scores",
    "robust_z",
    "shortest_half",
]

TIE = 1e-9
"""Relative difference below which two windows of :func:`shortest_half` count as equally
narrow."""

MAD_SCALE = 1.4826
"""For normally distributed values ``1.4826 · MAD``, and ``1.4826 ·`` the half-width of the
shortest half, estimate σ (both are 0.6745 σ)."""

OUTPUT_CAP = 6.0
"""The most the ``output_direction`` family's robust z-score counts for in the outlier score.
The direction of an update's output layer follows its device's label mix, and under label
skew (a Dirichlet partition; an IoT device that sees mostly one kind of traffic) a round's
updates fall into clusters by majority class: the shortest half sits in the largest one,
often with a spread of a few hundredths, and an honest device of another majority class
scored 13–38 on this family alone (N-BaIoT, 50 devices: 14 of them flagged in the first
round). Six robust units is already far in the tail; beyond it the family adds nothing, and
such an update is flagged only if it is unusual in other families too (a label-flipped one
raises the root loss as well)."""

FINGERPRINTS = (
    "norm",
    "cosine",
    "layer_cosine",
    "layer_moments",
    "output_direction",
    "root_loss",
)
"""The families of statistics the screen compares across a round's updates."""


@dataclass(frozen=True)
class Family:
    """One family of fingerprint columns: ``values`` ``[K, m]`` float64, the side on which a
    column is suspicious (``-1`` low, ``+1`` high, ``0`` both), how the family's robust
    z-scores combine into one per row (``mean`` over layers, or ``max`` over coordinates) and
    the most that combined score counts for (``cap``)."""

    values: torch.Tensor
    side: int
    combine: str
    cap: float = math.inf


def _layers(p: int, sizes: tuple[int, ...]) -> list[tuple[int, int]]:
    if not sizes or sum(sizes) != p:
        return [(0, p)]
    out, start = [], 0
    for s in sizes:
        out.append((start, start + s))
        start += s
    return out


def _cosine(x: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    denom = x.norm(dim=1) * centre.norm()
    dots = x @ centre
    return torch.where(denom > 0, dots / denom.clamp_min(1e-300), torch.zeros_like(dots))


def _angle(x: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """The angle to ``centre`` in radians (π/2 for a zero vector). Angles, unlike cosines near
    1, spread evenly enough for a robust scale: updates close to the centre differ by a
    few hundredths of cosine but by whole degrees."""
    return torch.arccos(_cosine(x, centre).clamp(-1.0, 1.0))


def _size_residual(log_norm: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """``log_norm`` minus its least-squares fit on the log sample counts: devices with more
    data take more local steps and send longer updates; what is left is the anomaly."""
    if weights is None or len(weights) < 3:
        return log_norm
    lw = torch.log(weights.to(torch.float64).clamp_min(1.0))
    if float(lw.std()) == 0:
        return log_norm
    a = torch.stack([torch.ones_like(lw), lw], dim=1)
    coef: torch.Tensor = torch.linalg.lstsq(a, log_norm[:, None]).solution
    fit: torch.Tensor = (a @ coef)[:, 0]
    return log_norm - fit


def fingerprints(
    updates: torch.Tensor,
    centre: torch.Tensor,
    sizes: tuple[int, ...] = (),
    weights: torch.Tensor | None = None,
    root_loss: torch.Tensor | None = None,
) -> dict[str, Family]:
    """The statistical fingerprint of every row of ``updates`` ``[K, P]``, by family.

    - ``norm``: log L2 norm, less what the device's sample count (``weights``) explains
      (suspicious on both sides: boosted, or zero/tiny updates);
    - ``cosine``: the angle to the robust ``centre`` (high side);
    - ``layer_cosine``: per layer (``sizes`` splits the flat vector), the angle to the
      centre's layer (high side, averaged over layers);
    - ``layer_moments``: per layer, the distribution moments of its values — mean, log
      standard deviation, excess kurtosis (both sides, averaged);
    - ``output_direction``: the last layer (the output bias of a classifier) as a unit
      vector, per coordinate (both sides, the largest, counted up to :data:`OUTPUT_CAP`):
      which outputs a device pushes up or down, the signature of label flipping (Tolpegin et
      al. 2020 look at the same layer), and of an honest device's own label mix;
    - ``root_loss``: when given, how much the update alone raises the loss on the validators'
      root data (high side; Zeno, Xie et al. 2019; see :mod:`fedledger.fl.probe`).
    """
    x = updates.to(torch.float64)
    c = centre.to(torch.float64)
    tiny = torch.finfo(torch.float64).tiny
    layers = _layers(x.shape[1], sizes)
    cos_cols, moment_cols = [], []
    for a, b in layers:
        v = x[:, a:b]
        cos_cols.append(_angle(v, c[a:b]))
        mean = v.mean(dim=1)
        moment_cols.append(mean)
        if b - a >= 4:
            dev = v - mean[:, None]
            var = (dev * dev).mean(dim=1)
            moment_cols.append(0.5 * torch.log(var + tiny))
            kurt = (dev**4).mean(dim=1) / (var * var).clamp_min(tiny) - 3.0
            moment_cols.append(torch.where(var > 0, kurt, torch.zeros_like(kurt)))
    a, b = layers[-1]
    out = x[:, a:b]
    out = out / out.norm(dim=1, keepdim=True).clamp_min(tiny)
    families = {
        "norm": Family(_size_residual(torch.log(x.norm(dim=1) + tiny), weights)[:, None], 0, "max"),
        "cosine": Family(_angle(x, c)[:, None], 1, "max"),
        "layer_cosine": Family(torch.stack(cos_cols, dim=1), 1, "mean"),
        "layer_moments": Family(torch.stack(moment_cols, dim=1), 0, "mean"),
        "output_direction": Family(out, 0, "max", OUTPUT_CAP),
    }
    if root_loss is not None:
        loss = root_loss.to(torch.float64)
        finite = torch.isfinite(loss)
        top = float(loss[finite].max()) if bool(finite.any()) else 0.0
        loss = torch.where(finite, loss, torch.full_like(loss, top + 1e6))
        families["root_loss"] = Family(loss[:, None], 1, "max")
    return families


def shortest_half(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Location and scale of every column of ``values`` ``[K, m]`` from its shortest half
    (Rousseeuw 1984, "Least median of squares regression"; Rousseeuw & Leroy 1988, "A robust
    scale estimator based on the shortest half"): the narrowest interval holding
    ``h = ⌊K/2⌋ + 1`` of the column's values (the lowest one where several are equally
    narrow), its midpoint as the location (the LMS location) and ``1.4826 · (1 + 5/(K − 1))``
    times its half-width as the scale (consistent for normal data, with the authors'
    small-sample factor).

    Like the median and the MAD it tolerates almost half the rows being outliers, but it is
    far less dragged by them when they all lie on one side, as a coordinated attack's do:
    with 30% of the rows shifted the median moves towards them and the MAD widens, which
    hides the very rows that moved; the shortest half stays on the honest majority.
    """
    k = values.shape[0]
    h = k // 2 + 1
    ordered = values.sort(dim=0).values
    widths = ordered[h - 1 :] - ordered[: k - h + 1]
    # the lowest of the narrowest; "equally narrow" up to rounding, so that scaling every
    # value by one factor (which rounds each width differently) never changes the choice
    near = widths <= widths.min(dim=0, keepdim=True).values * (1.0 + TIE)
    start = near.to(torch.int8).argmax(dim=0, keepdim=True)
    low = ordered.gather(0, start)[0]
    high = ordered.gather(0, start + (h - 1))[0]
    scale = MAD_SCALE * (1.0 + 5.0 / max(k - 1, 1)) * 0.5 * (high - low)
    return 0.5 * (low + high), scale


def robust_z(values: torch.Tensor, side: int) -> torch.Tensor:
    """Robust z-scores of the columns of ``values`` ``[K, m]``: ``(x − location) / scale``
    from the column's shortest half (:func:`shortest_half`), counted only on the suspicious
    ``side`` and clamped at 0. A column whose shortest half has no width (more than half the
    rows agree) uses the mean absolute deviation from that value, and scores 0 if that is 0
    too (every row agrees)."""
    loc, scale = shortest_half(values)
    dev = values - loc
    fallback = dev.abs().mean(dim=0) * 1.2533  # σ from the mean absolute deviation
    scale = torch.where(scale > 0, scale, fallback)
    z = torch.where(scale > 0, dev / scale.clamp_min(1e-300), torch.zeros_like(dev))
    oriented = z.abs() if side == 0 else z * side
    return oriented.clamp_min(0)


def family_scores(families: dict[str, Family]) -> torch.Tensor:
    """``[K, F]``: per family, its columns' robust z-scores (:func:`robust_z`) combined —
    averaged over layers, or the largest over coordinates — and capped at the family's
    ``cap``."""
    per_family = []
    for fam in families.values():
        z = robust_z(fam.values, fam.side)
        combined = z.mean(dim=1) if fam.combine == "mean" else z.max(dim=1).values
        per_family.append(combined.clamp_max(fam.cap))
    return torch.stack(per_family, dim=1)


def outlier_scores(families: dict[str, Family]) -> torch.Tensor:
    """Unsupervised outlier score of every row, in two stages. First ``S_i = Σ_f z_if²`` over
    the family scores (:func:`family_scores`; a diagonal Mahalanobis distance); an honest
    non-IID device is unusual in one family at a time, a poisoned update in several at once.
    ``S`` is about χ² with one degree of freedom per family, so it is taken to the cube root,
    which makes a χ² nearly normal (Wilson & Hilferty 1931), and scored by its robust z-score
    across the round (location and scale of its shortest half, :func:`shortest_half`, high
    side): the threshold adapts to the round's own spread, which is never taken below the cube
    root's spread for ordinary rows, ``F^(1/3)·√(2 / 9F)``."""
    per_family = family_scores(families)
    f = per_family.shape[1]
    root: torch.Tensor = (per_family**2).sum(dim=1).clamp_min(0) ** (1.0 / 3.0)
    loc, spread = shortest_half(root[:, None])
    floor = float(f) ** (1.0 / 3.0) * math.sqrt(2.0 / (9.0 * f))
    scores: torch.Tensor = ((root - loc[0]) / max(float(spread[0]), floor)).clamp_min(0)
    return scores
