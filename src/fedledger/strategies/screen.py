"""Anomaly screen: fingerprint every update, flag the outliers, average the rest by reputation."""

from __future__ import annotations

from dataclasses import replace

import torch

from fedledger.config import StrategyConfig
from fedledger.errors import FedledgerError
from fedledger.strategies.base import RoundContext, Strategy, weighted_mean
from fedledger.strategies.column_energy import (
    COLUMN_GAP,
    CORROBORATION_GAP,
    CORROBORATION_SETTERS,
    STRONG_MARGIN,
    SUPPORT_GAP,
    Group,
    coordinated_groups,
    corroborated,
)
from fedledger.strategies.fingerprints import fingerprints, outlier_scores
from fedledger.strategies.median import coordinate_median
from fedledger.strategies.shift_groups import SHIFT_GAP, shift_groups

__all__ = ["AnomalyScreen"]


class AnomalyScreen(Strategy):
    """Screen the updates before averaging them, in the spirit of RAPID in RAFeL (a
    robust, anomaly-screening aggregation for blockchain FL): every update gets a statistical
    fingerprint (:func:`~fedledger.strategies.fingerprints.fingerprints`: its norm, its angle
    to a robust centre — the coordinate-wise median of Yin et al. 2018 — per-layer angles and
    distribution moments, the direction of its output layer, and, when the validators hold
    root data, its effect on the root loss, which the engine or the enclave computes with
    :mod:`fedledger.fl.probe`), and an unsupervised outlier score
    (:func:`~fedledger.strategies.fingerprints.outlier_scores`: robust z-scores per family,
    summed in squares, cube-rooted and calibrated on the round, among the updates not
    already flagged as non-finite or by the column rule). Updates scoring above
    ``threshold`` are flagged: excluded this round and reported (:attr:`flagged`); so are
    non-finite ones, and
    the updates of a coordinated group on some input column
    (:func:`~fedledger.strategies.column_energy.coordinated_groups`, after DeepSight's
    normalised update energies, Rieger et al. NDSS 2022): a group of updates that all put a
    share of their first-layer change on an input column at least ``column_gap`` decades above
    everyone else's, which is how a trigger backdoor looks. A group is flagged when it stands
    ``column_gap + 0.5`` decades above the rest; a column flagged in one round stays flagged
    at ``column_gap`` in the next. The same updates grouped on two columns of one round (a
    trigger sets several columns) are flagged from ``corroboration_gap`` decades, or from
    ``support_gap`` on the second column when both groups are nearly the same updates (a
    trigger real traffic could carry has one rare service and one rare flag at most; its
    numeric columns lift its updates only a little, but all of them): on such a column, only
    the rows in the groups of most of the columns linked to it, not its whole group. The
    flagged columns are in :attr:`columns`. With root data of a classifier that has a benign
    class, the updates of a group whose model a single input column turns toward "benign" far
    more than the rest's (:func:`~fedledger.strategies.shift_groups.shift_groups`, on the
    validators' measure :func:`~fedledger.fl.probe.benign_shift`) are flagged too, from
    ``shift_gap`` robust units, and from a quarter of it while the column was flagged the
    round before (:attr:`shift_columns`): a backdoor whose trigger uses no rare column. Such
    groups are sought among all updates, whose members stay out of the outlier score's
    calibration, and flagged as found again among the updates no other rule flagged.
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
    corroboration_gap
        Decades from which the same updates grouped on two input columns are flagged (``0``:
        only single columns count).
    support_gap
        Decades from which a group on a second column, of nearly the same updates
        (:data:`~fedledger.strategies.column_energy.SUPPORT_OVERLAP`), backs a group of
        ``corroboration_gap`` (``0``: only two such groups pair up).
    direction
        Flag updates that point against the last global step, from devices that mostly do.
    shift_gap
        Robust units from which a benign-shift group is flagged (``0``: no such rule).
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
        corroboration_gap: float = CORROBORATION_GAP,
        support_gap: float = SUPPORT_GAP,
        shift_gap: float = SHIFT_GAP,
    ) -> None:
        if threshold <= 0:
            raise FedledgerError(f"screen: threshold must be > 0, not {threshold}")
        if not 0 <= decay < 1:
            raise FedledgerError(f"screen: reputation decay must be in [0, 1), not {decay}")
        if column_gap < 0:
            raise FedledgerError(f"screen: column gap must be >= 0, not {column_gap}")
        if corroboration_gap < 0:
            raise FedledgerError(f"screen: corroboration gap must be >= 0, not {corroboration_gap}")
        if support_gap < 0:
            raise FedledgerError(f"screen: support gap must be >= 0, not {support_gap}")
        if shift_gap < 0:
            raise FedledgerError(f"screen: shift gap must be >= 0, not {shift_gap}")
        self.threshold = threshold
        self.decay = decay
        self.server_lr = server_lr
        self.column_gap = column_gap
        self.corroboration_gap = corroboration_gap
        self.support_gap = support_gap
        self.shift_gap = shift_gap
        self.needs_benign_shift = shift_gap > 0
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
        self.shift_columns: list[int] = []
        """The input columns a benign-shift group was flagged on in the last round."""

    @classmethod
    def from_config(cls, cfg: StrategyConfig) -> AnomalyScreen:
        lr = 1.0 if cfg.server_lr is None else cfg.server_lr
        return cls(
            threshold=cfg.screen_threshold,
            decay=cfg.reputation_decay,
            server_lr=lr,
            column_gap=cfg.screen_column_gap,
            direction=cfg.screen_direction,
            corroboration_gap=cfg.screen_corroboration_gap,
            support_gap=cfg.screen_support_gap,
            shift_gap=cfg.screen_shift_gap,
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
        """Outlier score of every row (see
        :func:`~fedledger.strategies.fingerprints.outlier_scores`); fewer than 3 rows are not
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
        groups = coordinated_groups(clean_rows, ctx.sizes, self.column_gap)
        backed: dict[int, list[int]] = {}
        if self.column_gap > 0 and self.corroboration_gap > 0:
            lowest = min(self.corroboration_gap, self.support_gap or self.corroboration_gap)
            weak = coordinated_groups(
                clean_rows, ctx.sizes, lowest, min_setters=CORROBORATION_SETTERS
            )
            paired = {j: g for j, g in weak.items() if g.gap >= self.corroboration_gap}
            backed = corroborated(paired, support=weak if self.support_gap > 0 else None)
        suspects = self._column_suspects(groups, backed)
        self.columns = sorted(suspects)
        self.coordinated = sorted(set(groups) | set(backed))
        shift = ctx.benign_shift
        if shift is not None and shift.shape[0] != k:
            shift = None
        held = frozenset(self.shift_columns)
        candidates = {} if shift is None else shift_groups(shift, self.shift_gap, held)
        grouped = torch.zeros(k, dtype=torch.bool)
        for rows in suspects.values():
            grouped[rows] = True
        unscored = grouped.clone()  # benign-shift candidates are kept out of the calibration too
        for rows in candidates.values():
            unscored[rows] = True
        devices = ctx.devices if len(ctx.devices) == k else tuple(-1 for _ in range(k))
        scores = self._scores_among(
            clean_rows, weights, replace(ctx, devices=devices), ~(bad | unscored)
        )
        backwards = self._backwards(clean_rows, devices)
        self.against = [int(i) for i in torch.nonzero(backwards).flatten()]
        flagged = (scores > self.threshold) | bad | grouped | backwards
        shifted = self._shift_suspects(shift, flagged, held) if candidates else {}
        self.shift_columns = sorted(shifted)
        for rows in shifted.values():
            flagged[rows] = True
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

    def _scores_among(
        self,
        rows: torch.Tensor,
        weights: torch.Tensor,
        ctx: RoundContext,
        scored: torch.Tensor,
    ) -> torch.Tensor:
        """Outlier scores (:meth:`screen`) of the rows in the ``[K]`` mask ``scored`` (``ctx``
        names a device for every row, ``-1`` where unknown), measured among those rows alone
        (their centre, their families' spreads, the round's calibration); 0 for the others,
        flagged already (non-finite, or by the column rule). The 20–30 updates of a backdoor
        are alike in every family, and left in they narrow the shortest halves the scores are
        calibrated on: with them, honest devices whose traffic is unusual were flagged in most
        rounds (9 of them with seed 1 at 30% backdoor devices on NSL-KDD, none without
        them)."""
        out = torch.zeros(rows.shape[0], dtype=torch.float64)
        idx = torch.nonzero(scored).flatten()
        if len(idx) == rows.shape[0]:
            return self.screen(rows, weights, ctx)
        devices = tuple(ctx.devices[i] for i in idx.tolist())
        loss = None if ctx.root_loss is None else ctx.root_loss[idx]
        sub = replace(ctx, devices=devices, root_loss=loss)
        out[idx] = self.screen(rows[idx], weights[idx], sub)
        return out

    def _column_suspects(
        self, groups: dict[int, Group], backed: dict[int, list[int]]
    ) -> dict[int, list[int]]:
        """``{column: rows}`` flagged by the coordinated-column rule: the whole group of a column
        (``groups``, at ``column_gap``) that stands ``column_gap + STRONG_MARGIN`` decades above
        the rest, or ``column_gap`` while the column was flagged in the previous round, by any
        rule, pairing included (an honest group that crosses the gap now and then never gets
        in without standing out as far as a trigger); but on a column whose group, at
        ``corroboration_gap`` (or at ``support_gap``, backing one of those), is also another
        column's this round (``backed``,
        :func:`~fedledger.strategies.column_energy.corroborated`), only the rows the paired
        groups share: Gaussian-noise updates stand above the rest on every rare column, each
        time with the one or two honest devices that use that column most, which the whole
        group would flag with them."""
        previous = set(self.columns)
        suspects: dict[int, list[int]] = dict(backed)
        for j, g in groups.items():
            if j not in backed and (j in previous or g.gap >= self.column_gap + STRONG_MARGIN):
                suspects[j] = g.rows
        return dict(sorted(suspects.items()))

    def _shift_suspects(
        self, shift: torch.Tensor | None, flagged: torch.Tensor, held: frozenset[int]
    ) -> dict[int, list[int]]:
        """``{column: rows}`` flagged by the benign-shift rule: the groups
        (:func:`~fedledger.strategies.shift_groups.shift_groups`) among the rows no other rule
        flagged. Measured among all rows, the groups pick the candidates that are kept out of
        the outlier score's calibration (20–30 alike backdoor updates left in get honest ones
        flagged, as for coordinated columns); measured again among the rest, they leave out
        an honest device that joins a group of updates another rule flags (Gaussian-noise
        updates answer many columns erratically and the column rule flags them on the rare
        columns: with all rows, two honest devices of NSL-KDD's seed 0 fell into their groups
        often enough to count as detected)."""
        if shift is None:
            return {}
        rest = torch.nonzero(~flagged).flatten()
        found = shift_groups(shift[rest], self.shift_gap, held)
        return {c: [int(rest[i]) for i in rows] for c, rows in found.items()}

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
            "shift_columns": torch.tensor(self.shift_columns, dtype=torch.int64),
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
            self.columns, self.shift_columns = [], []
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
        # absent from checkpoints written before the benign-shift rule: none then
        self.shift_columns = [int(j) for j in state.get("shift_columns", torch.zeros(0)).tolist()]
        step = state.get("step")
        self.step = None if step is None else step.clone()
        # absent from checkpoints written before the device record: no record then
        ids = state.get("pointing_ids", torch.zeros(0, dtype=torch.int64)).tolist()
        counts = state.get("pointing", torch.zeros(0, 2, dtype=torch.int64)).tolist()
        self.pointing = {int(d): (int(a), int(n)) for d, (a, n) in zip(ids, counts, strict=True)}
