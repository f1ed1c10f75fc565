"""Free-rider detection: updates a device sent without training on its data.

Lin, Du, Liu, 2019, "Free-riders in Federated Learning: Attacks and Defenses"
(arXiv:1911.12560) and Fraboni, Vidal, Lorenzi, AISTATS 2021, "Free-rider Attacks on Model
Aggregation in Federated Learning" describe the updates a free rider can send instead of
training: nothing (``Δ = 0``), the model's own last step (``Δ = θ_t − θ_{t−1}``), another
device's update, or random weights of a plausible size. Each leaves a trace that a trained
update does not, which :func:`detect_free_riders` tests for, row by row, in this order:

``zero``
    ``‖Δ_i‖ ≤ tol · median_j ‖Δ_j‖`` (or exactly zero when every update is).
``stale``
    ``‖Δ_i − s‖ ≤ tol · ‖s‖`` for the last global step ``s``: the update replays what every
    device already received.
``copied``
    ``‖Δ_i − Δ_j‖ ≤ tol · max(‖Δ_i‖, ‖Δ_j‖)`` for another row ``j``. Who copied whom cannot be
    told from the updates, so every row of such a group is flagged; two devices that trained
    on their own data never produce the same update to within ``tol``.
``noise``
    ``Δ_i`` is uncorrelated with every other update. For a direction drawn at random in
    ``P`` dimensions, ``√P · cos(Δ_i, Δ_j)`` is approximately standard normal, so ``Δ_i`` is
    flagged when ``max_j |cos(Δ_i, Δ_j)| < z / √P`` with ``z`` the two-sided normal quantile
    at level ``alpha`` Bonferroni-corrected over the ``K − 1`` other rows. Trained updates
    share the task's gradient directions with at least some other device, far above that
    bound; random weights do not.

A device with little data still sends a trained update: it is smaller (fewer steps) and
noisier, but neither zero to within ``tol`` of the median nor uncorrelated with everyone, so
it is not flagged (see ``tests/incentives/test_free_riders.py``).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import torch

__all__ = ["ALPHA", "FREE_RIDING", "TOLERANCE", "detect_free_riders", "noise_bound"]

FREE_RIDING = ("zero", "stale", "copied", "noise")
"""The kinds of free-riding update :func:`detect_free_riders` reports."""

TOLERANCE = 1e-3
"""Relative distance under which two updates count as the same (``zero``, ``stale``, ``copied``)."""

ALPHA = 1e-3
"""Chance that an update drawn at random correlates with another above the ``noise`` bound."""


def noise_bound(n_params: int, n_others: int, alpha: float = ALPHA) -> float:
    """The largest ``|cos|`` a random direction in ``n_params`` dimensions reaches with any
    of ``n_others`` fixed vectors with probability ``1 − alpha`` (normal approximation,
    Bonferroni over the others)."""
    if n_params <= 0 or n_others <= 0:
        return 0.0
    z = NormalDist().inv_cdf(1.0 - alpha / (2.0 * n_others))
    return z / math.sqrt(n_params)


def detect_free_riders(
    updates: torch.Tensor,
    step: torch.Tensor | None = None,
    tolerance: float = TOLERANCE,
    alpha: float = ALPHA,
) -> dict[int, str]:
    """Rows of ``updates`` (``[K, P]``) that look free-ridden, with the kind (one of
    :data:`FREE_RIDING`); ``step`` is the last global step ``θ_t − θ_{t−1}`` (``None`` in the
    first round). See the module docstring for the tests."""
    k = int(updates.shape[0])
    if k == 0:
        return {}
    x = updates.detach().to(torch.float64)
    norms = x.norm(dim=1)
    median = float(norms.median())
    found: dict[int, str] = {}
    for i in range(k):
        if float(norms[i]) <= tolerance * median or float(norms[i]) == 0.0:
            found[i] = "zero"
    if step is not None:
        s = step.detach().to(torch.float64)
        s_norm = float(s.norm())
        if s_norm > 0:
            gaps = (x - s).norm(dim=1)
            for i in range(k):
                if i not in found and float(gaps[i]) <= tolerance * s_norm:
                    found[i] = "stale"
    live = [i for i in range(k) if i not in found]
    if len(live) < 2:
        return found
    y = x[live]
    gram = y @ y.T
    sq = torch.diagonal(gram)
    dist = (sq[:, None] + sq[None, :] - 2.0 * gram).clamp_min(0.0).sqrt()
    scale = torch.maximum(norms[live][:, None], norms[live][None, :])
    same = dist <= tolerance * scale
    same.fill_diagonal_(False)
    for a, i in enumerate(live):
        if bool(same[a].any()):
            found[i] = "copied"
    unit = y / norms[live][:, None]
    cos = (unit @ unit.T).abs()
    cos.fill_diagonal_(0.0)
    bound = noise_bound(int(x.shape[1]), len(live) - 1, alpha)
    best = cos.max(dim=1).values
    for a, i in enumerate(live):
        if i not in found and float(best[a]) < bound:
            found[i] = "noise"
    return dict(sorted(found.items()))
