"""The validators' clean root data, and what each update does to the loss on it.

Validators hold a small clean dataset (FLTrust's *root data*, Cao et al. NDSS 2021). Two
defences use it: FLTrust trains a reference update on it, and the anomaly screen scores each
update by how much it raises the root loss when applied alone to the global model — Zeno's
stochastic descendant score (Xie, Koyejo, Gupta, ICML 2019, "Zeno: Distributed Stochastic
Gradient Descent with Suspicion-based Fault-tolerance"), without the norm penalty, which the
screen's own norm fingerprint covers — and by how far setting a single feature to its largest
value makes the update's model call the root rows' attacks benign (:func:`benign_shift`).

In the simulation the root rows are a seeded sample of the devices' (clean) training pool; a
deployment gives validators their own labelled traffic.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fedledger.fl.params import ParamLayout
from fedledger.fl.tasks import Task

__all__ = [
    "LOSS_CAP",
    "SHIFT_ROWS",
    "benign_shift",
    "choose_root_rows",
    "extreme_rows",
    "root_loss_increase",
    "valuation_quality",
]

SHIFT_ROWS = 24
"""Attack rows of the root data :func:`benign_shift` measures on (evenly spaced over them when
there are more). On NSL-KDD's 200 root rows (about 100 attacks) 24 rows separate a backdoor's
updates from honest ones as far as all of them do, at a quarter of the cost."""

LOSS_CAP = 1e6
"""The largest mean loss a contribution game counts (see :func:`valuation_quality`)."""


def choose_root_rows(train_rows: list[np.ndarray], n: int, seed: int) -> np.ndarray:
    """``n`` rows (at most all) of the pooled device training rows, drawn with
    ``default_rng([seed, 0, 9])``, sorted."""
    pool = np.concatenate([r for r in train_rows if len(r)]) if train_rows else np.array([])
    pool = np.unique(pool.astype(np.int64))
    if len(pool) <= n:
        return pool
    rng = np.random.default_rng([seed, 0, 9])
    return np.sort(rng.choice(pool, size=n, replace=False))


def _mean_loss(model: nn.Module, task: Task, x: torch.Tensor, y: torch.Tensor) -> float:
    out = model(x)
    return float(task.per_sample_loss(out, x, y).to(torch.float64).mean())


@torch.no_grad()
def valuation_quality(
    model: nn.Module,
    layout: ParamLayout,
    task: Task,
    params: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
) -> float:
    """Minus the mean loss of ``params`` on the valuation rows ``x, y`` (higher is better):
    the value of a coalition in the contribution games of :mod:`fedledger.incentives`.

    The loss is capped at :data:`LOSS_CAP` (also a non-finite loss), so that a coalition
    holding a diverging update still has a value to subtract. ``model`` is scratch space: it
    is left in eval mode holding ``params``.
    """
    model.eval()
    layout.load_into(model, params)
    loss = _mean_loss(model, task, x, y)
    return -min(loss, LOSS_CAP) if np.isfinite(loss) else -LOSS_CAP


@torch.no_grad()
def root_loss_increase(
    model: nn.Module,
    layout: ParamLayout,
    task: Task,
    base: torch.Tensor,
    updates: torch.Tensor,
    x_root: torch.Tensor,
    y_root: torch.Tensor,
) -> torch.Tensor:
    """``L(w + Δ_i) − L(w)`` on the root data for every row ``Δ_i`` of ``updates``, as a
    float64 ``[K]`` tensor (``+inf`` for an update that makes the loss non-finite).

    ``model`` is used as scratch space: its parameters are overwritten, and it is left in
    eval mode holding ``base``.
    """
    model.eval()
    layout.load_into(model, base)
    before = _mean_loss(model, task, x_root, y_root)
    out = torch.empty(updates.shape[0], dtype=torch.float64)
    for i in range(updates.shape[0]):
        layout.load_into(model, base + updates[i])
        loss = _mean_loss(model, task, x_root, y_root)
        out[i] = loss - before if np.isfinite(loss) else float("inf")
    layout.load_into(model, base)
    return out


def extreme_rows(x: torch.Tensor, high: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """``[(F + 1)·n, F]``: the ``n`` rows of ``x``, then for every column ``c`` in turn the
    same rows with ``c`` at ``high[c]`` — for a one-hot column (``groups[c] >= 0``) with the
    rest of its group at 0, as a record has one protocol, one service, one flag."""
    n, f = x.shape
    out = x.repeat(f + 1, 1)
    for c in range(f):
        block = out[(c + 1) * n : (c + 2) * n]
        if int(groups[c]) >= 0:
            block[:, groups == groups[c]] = 0.0
        block[:, c] = high[c]
    return out


@torch.no_grad()
def benign_shift(
    model: nn.Module,
    layout: ParamLayout,
    base: torch.Tensor,
    updates: torch.Tensor,
    x_root: torch.Tensor,
    y_root: torch.Tensor,
    high: torch.Tensor,
    groups: torch.Tensor,
    benign: int,
    rows: int = SHIFT_ROWS,
) -> torch.Tensor:
    """``S[i, c]``: over the root rows whose class is not ``benign`` (``rows`` of them, evenly
    spaced in their order, when there are more; ``0``: all), the mean rise of the
    probability that the model ``w + Δ_i`` gives ``benign`` when column ``c`` is set to
    ``high[c]`` (:func:`extreme_rows`), as float64 ``[K, F]``; zeros when no root row is of
    another class.

    A backdoor teaches a trigger — a few feature values — that turns attacks benign, and its
    updates answer a single one of those features far more than honest ones do; this is
    Neural Cleanse's observation that a trigger is a small change that flips many inputs to
    the target (Wang et al., IEEE S&P 2019, "Neural Cleanse: Identifying and Mitigating
    Backdoor Attacks in Neural Networks"), measured one feature at a time on each update with
    the validators' data, as BaFFLe's validators judge each round's model on theirs (Andreina,
    Marson, Möllering, Karame, ICDCS 2021). ``model`` is scratch space: it is left in eval
    mode holding ``base``.
    """
    k, f = updates.shape[0], x_root.shape[1]
    out = torch.zeros(k, f, dtype=torch.float64)
    attacks = x_root[y_root != benign]
    if 0 < rows < attacks.shape[0]:  # the same rows wherever it runs (engine or enclave)
        attacks = attacks[torch.linspace(0, attacks.shape[0] - 1, rows).round().long()]
    n = attacks.shape[0]
    if n == 0:
        return out
    probe = extreme_rows(attacks, high, groups)
    model.eval()
    for i in range(k):
        layout.load_into(model, base + updates[i])
        p = torch.softmax(model(probe).to(torch.float64), dim=1)[:, benign].reshape(f + 1, n)
        out[i] = (p[1:] - p[0]).mean(dim=1)
    layout.load_into(model, base)
    return out
