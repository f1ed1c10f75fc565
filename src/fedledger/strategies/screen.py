"""Anomaly screen: fingerprint every update, flag the outliers, average the rest by reputation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from fedledger.config import StrategyConfig
from fedledger.errors import FedledgerError
from fedledger.strategies.base import RoundContext, Strategy, weighted_mean
from fedledger.strategies.column_energy import (
    COLUMN_GAP,
    STRONG_MARGIN,
    Group,
    coordinated_groups,
    corroborated,
)
from fedledger.strategies.median import coordinate_median

__all__ = [
    "FINGERPRINTS",
    "AnomalyScreen",
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
    column is suspicious (``-1`` low, ``+1`` high, ``0`` both) and how the family's robust
    z-scores combine into one per row (``mean`` over layers, or ``max`` over coordinates)."""

    values: torch.Tensor
    side: int
    combine: str


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
      vector, per coordinate (both sides, the largest): which outputs a device pushes up or
      down, the signature of label flipping (Tolpegin et al. 2020 look at the same layer);
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
        "output_direction": Family(out, 0, "max"),
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
    averaged over layers, or the largest over coordinates."""
    per_family = []
    for fam in families.values():
        z = robust_z(fam.values, fam.side)
        per_family.append(z.mean(dim=1) if fam.combine == "mean" else z.max(dim=1).values)
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


class AnomalyScreen(Strategy):
    """Screen the updates before averaging them, in the spirit of RAPID in RAFeL (a
    robust, anomaly-screening aggregation for blockchain FL): every update gets a statistical
    fingerprint (:func:`fingerprints`: its norm, its angle to a robust centre — the
    coordinate-wise median of Yin et al. 2018 — per-layer angles and distribution moments, the
    direction of its output layer, and, when the validators hold root data, its effect on the
    root loss, which the engine or the enclave computes with :mod:`fedledger.fl.probe`), and
    an unsupervised outlier score (:func:`outlier_scores`: robust z-scores per family, summed
    in squares, cube-rooted and calibrated on the round). Updates scoring above ``threshold`` are
    flagged: excluded this round and reported (:attr:`flagged`); so are non-finite ones, and
    the updates of a coordinated group on some input column
    (:func:`~fedledger.strategies.column_energy.coordinated_groups`, after DeepSight's
    normalised update energies, Rieger et al. NDSS 2022): a group of updates that all put a
    share of their first-layer change on an input column at least ``column_gap`` decades above
    everyone else's, which is how a trigger backdoor looks. A group is flagged when it stands
    ``column_gap + 0.5`` decades above the rest, or when the same updates form a group on
    another column of the round too (a trigger sets several columns: the updates in both are
    flagged); a column flagged in one round stays flagged at ``column_gap`` in the next. The
    flagged columns are in :attr:`columns`.
    With ``direction`` (the default), an update that points against the last global step the
    screen applied (negative cosine: FLTrust's zero-trust rule, Cao et al. NDSS 2021, with the
    trajectory as the reference instead of an update trained on root data) is flagged too, if
    its device pointed against the step in more than half of the rounds the screen has seen it
    in, one round along the step counted in as a prior (:attr:`pointing`), and unless more than
    half of the round does (then the step itself is suspect and the rule rests for the
    round). Sign-flipped updates point backwards in almost every round; honest ones now and
    then (near convergence, when a step overshoots) or in the first rounds (a device whose
    data the first steps move away from).

    The rest are averaged with weights ``n_samples · reputation``. A device's reputation
    (Kang et al. 2019, "Incentive Mechanism for Reliable Federated Learning", reputation as
    an exponentially weighted record of its behaviour) starts at 1 and after every round it
    takes part in becomes ``decay · reputation + (1 − decay) · (0 if flagged else 1)``, so a
    device flagged in past rounds weighs less in the next ones. A round in which nothing was
    flagged is *clean*; after a clean round, :attr:`proximal` tells the engine to train the
    next round with FedProx's proximal term (Li et al. 2020), keeping devices near a model that
    passed the screen.

    Parameters
    ----------
    threshold
        Robust z-score of the combined fingerprint above which an update is flagged.
    decay
        Weight of the past in the reputation, in [0, 1).
    server_lr
        η in ``w ← w + η · Δ``.
    column_gap
        Decades that make a coordinated group on an input column (``0``: no such rule).
    direction
        Flag updates that point against the last global step, from devices that mostly do.
    """

    name = "screen"
    screens = True
    needs_root_loss = True

    def __init__(
        self,
        threshold: float = 3.5,
        decay: float = 0.5,
        server_lr: float = 1.0,
        column_gap: float = COLUMN_GAP,
        direction: bool = True,
    ) -> None:
        if threshold <= 0:
            raise FedledgerError(f"screen: threshold must be > 0, not {threshold}")
        if not 0 <= decay < 1:
            raise FedledgerError(f"screen: reputation decay must be in [0, 1), not {decay}")
        if column_gap < 0:
            raise FedledgerError(f"screen: column gap must be >= 0, not {column_gap}")
        self.threshold = threshold
        self.decay = decay
        self.server_lr = server_lr
        self.column_gap = column_gap
        self.direction = direction
        self.step: torch.Tensor | None = None
        """The last global step this screen applied (``None`` before its first round, and
        without ``direction``)."""
        self.against: list[int] = []
        """Rows of the last round flagged for pointing against the step."""
        self.pointing: dict[int, tuple[int, int]] = {}
        """Per device: the rounds in which its update pointed against the last global step,
        and the rounds in which it could be compared with one."""
        self.reputation: dict[int, float] = {}
        self.clean = False
        self.columns: list[int] = []
        """The input columns a coordinated group was flagged on in the last round."""
        self.coordinated: list[int] = []
        """The input columns that were coordinated in the last round (flagged or not)."""

    @classmethod
    def from_config(cls, cfg: StrategyConfig) -> AnomalyScreen:
        lr = 1.0 if cfg.server_lr is None else cfg.server_lr
        return cls(
            threshold=cfg.screen_threshold,
            decay=cfg.reputation_decay,
            server_lr=lr,
            column_gap=cfg.screen_column_gap,
            direction=cfg.screen_direction,
        )

    @property
    def proximal(self) -> bool:
        """True after a clean round: the next round trains with FedProx's proximal term."""
        return self.clean

    def screen(
        self,
        updates: torch.Tensor,
        weights: torch.Tensor | None = None,
        context: RoundContext | None = None,
    ) -> torch.Tensor:
        """Outlier score of every row (see :func:`outlier_scores`); fewer than 3 rows are not
        screened (scores 0)."""
        k = updates.shape[0]
        if k < 3:
            return torch.zeros(k, dtype=torch.float64)
        ctx = context or RoundContext()
        fams = fingerprints(updates, coordinate_median(updates), ctx.sizes, weights, ctx.root_loss)
        return outlier_scores(fams)

    def aggregate(
        self,
        global_params: torch.Tensor,
        updates: torch.Tensor,
        weights: torch.Tensor,
        context: RoundContext | None = None,
    ) -> torch.Tensor:
        k = updates.shape[0]
        if k == 0:
            raise FedledgerError("cannot aggregate: there are no updates")
        ctx = context or RoundContext()
        bad = ~torch.isfinite(updates).all(dim=1)
        clean_rows = torch.where(bad[:, None], torch.zeros_like(updates), updates)
        scores = self.screen(clean_rows, weights, ctx)
        groups = coordinated_groups(clean_rows, ctx.sizes, self.column_gap)
        suspects = self._column_suspects(groups)
        self.columns = sorted(suspects)
        self.coordinated = sorted(groups)
        grouped = torch.zeros(k, dtype=torch.bool)
        for rows in suspects.values():
            grouped[rows] = True
        devices = ctx.devices if len(ctx.devices) == k else tuple(-1 for _ in range(k))
        backwards = self._backwards(clean_rows, devices)
        self.against = [int(i) for i in torch.nonzero(backwards).flatten()]
        flagged = (scores > self.threshold) | bad | grouped | backwards
        self.flagged = tuple(int(i) for i in torch.nonzero(flagged).flatten())
        rep = torch.tensor(
            [self.reputation.get(d, 1.0) if d >= 0 else 1.0 for d in devices], dtype=torch.float64
        )
        for i, d in enumerate(devices):
            if d >= 0:
                seen = 0.0 if bool(flagged[i]) else 1.0
                self.reputation[d] = (
                    self.decay * self.reputation.get(d, 1.0) + (1 - self.decay) * seen
                )
        self.clean = not self.flagged
        keep = ~flagged
        if not bool(keep.any()):  # everyone flagged: the model stays
            if self.direction:
                self.step = torch.zeros_like(global_params)
            return global_params.clone()
        w = (weights.to(torch.float64) * rep)[keep]
        if float(w.sum()) <= 0:
            w = torch.ones_like(w)
        delta = weighted_mean(updates[keep], w.to(updates.dtype))
        if self.direction:  # kept (and checkpointed) only for the direction rule
            self.step = (self.server_lr * delta).detach().clone()
        return global_params + self.server_lr * delta

    def _column_suspects(self, groups: dict[int, Group]) -> dict[int, list[int]]:
        """``{column: rows}`` flagged by the coordinated-column rule: the whole group of a column
        that stands ``column_gap + STRONG_MARGIN`` decades above the rest, or ``column_gap``
        while the column was flagged in the previous round (an honest group that crosses the
        gap now and then never gets in without standing out as far as a trigger), and on a
        column whose group is also another column's this round
        (:func:`~fedledger.strategies.column_energy.corroborated`) the rows the two share."""
        previous = set(self.columns)
        backed = corroborated(groups)
        suspects: dict[int, list[int]] = {}
        for j, g in sorted(groups.items()):
            if j in previous or g.gap >= self.column_gap + STRONG_MARGIN:
                suspects[j] = g.rows
            elif j in backed:
                suspects[j] = backed[j]
        return suspects

    def _backwards(self, rows: torch.Tensor, devices: tuple[int, ...]) -> torch.Tensor:
        """Rows with a negative cosine to the last global step whose device mostly points
        against it, if at most half of the round points against it. "Mostly": in more than half
        of the rounds it was compared with a step (this one included; :attr:`pointing` is
        updated), with one round along the step counted in as a prior, so that a device is
        never flagged on a single round (twice in a row is enough, as is 4 of 6). A device
        without an id (−1) has no record and is judged on this round alone."""
        k = rows.shape[0]
        none = torch.zeros(k, dtype=torch.bool)
        step = self.step
        if not self.direction or step is None or step.numel() != rows.shape[1] or k < 3:
            return none
        if float(step.norm()) == 0:
            return none
        negative = (rows.to(torch.float64) @ step.to(torch.float64)) < 0
        mostly = negative.clone()
        for i, d in enumerate(devices):
            if d < 0:
                continue
            against, seen = self.pointing.get(d, (0, 0))
            against, seen = against + int(bool(negative[i])), seen + 1
            self.pointing[d] = (against, seen)
            mostly[i] = 2 * against > seen + 1  # one round along the step as a prior
        return negative & mostly if 2 * int(negative.sum()) <= k else none

    def state_dict(self) -> dict[str, torch.Tensor]:
        ids = sorted(self.reputation)
        return {
            "reputation_ids": torch.tensor(ids, dtype=torch.int64),
            "reputation": torch.tensor([self.reputation[d] for d in ids], dtype=torch.float64),
            "clean": torch.tensor([1 if self.clean else 0], dtype=torch.int64),
            "coordinated": torch.tensor(self.coordinated, dtype=torch.int64),
            "columns": torch.tensor(self.columns, dtype=torch.int64),
            **({} if self.step is None else {"step": self.step.detach().contiguous()}),
            **self._pointing_state(),
        }

    def _pointing_state(self) -> dict[str, torch.Tensor]:
        if not self.pointing:
            return {}
        ids = sorted(self.pointing)
        return {
            "pointing_ids": torch.tensor(ids, dtype=torch.int64),
            "pointing": torch.tensor([self.pointing[d] for d in ids], dtype=torch.int64),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if not state:
            self.reputation, self.clean, self.coordinated, self.step = {}, False, [], None
            self.columns = []
            self.pointing = {}
            return
        missing = {"reputation_ids", "reputation", "clean"} - set(state)
        if missing:
            raise FedledgerError(f"screen: the checkpoint lacks {sorted(missing)}")
        ids = state["reputation_ids"].tolist()
        values = state["reputation"].tolist()
        self.reputation = {int(d): float(v) for d, v in zip(ids, values, strict=True)}
        self.clean = bool(int(state["clean"][0]))
        # absent from checkpoints written before the column rule: no column then
        self.coordinated = [int(j) for j in state.get("coordinated", torch.zeros(0)).tolist()]
        # absent from checkpoints written before the flagged columns were kept: none then
        self.columns = [int(j) for j in state.get("columns", torch.zeros(0)).tolist()]
        step = state.get("step")
        self.step = None if step is None else step.clone()
        # absent from checkpoints written before the device record: no record then
        ids = state.get("pointing_ids", torch.zeros(0, dtype=torch.int64)).tolist()
        counts = state.get("pointing", torch.zeros(0, 2, dtype=torch.int64)).tolist()
        self.pointing = {int(d): (int(a), int(n)) for d, (a, n) in zip(ids, counts, strict=True)}
