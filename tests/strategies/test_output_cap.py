"""The output-direction family is capped (fingerprints.OUTPUT_CAP): honest label skew alone
does not flag an update; with other evidence (the root loss) it still does."""

from __future__ import annotations

import math

import numpy as np
import torch

from fedledger.strategies.base import RoundContext
from fedledger.strategies.fingerprints import (
    OUTPUT_CAP,
    Family,
    family_scores,
    fingerprints,
    robust_z,
)
from fedledger.strategies.screen import AnomalyScreen

SIZES = (64, 8, 32, 8, 4)  # an MLP's layers; the last is the output bias of four classes
P = sum(SIZES)


def skewed_round(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """40 honest updates of a label-skewed round: every device's label mix is drawn from
    Dirichlet(2, 0.3, 0.3, 0.3) (most devices see mostly class 0), its output bias moves
    along its label mix less the uniform one (the cross-entropy gradient of a bias), its other
    layers share a direction with device noise and a little of the label mix; with sample
    counts, and the rows whose majority class is not 0."""
    rng = np.random.default_rng(seed)
    common = rng.normal(0, 1, P - 4)
    mixing = rng.normal(0, 1, (4, P - 4))
    mixes = rng.dirichlet((2.0, 0.3, 0.3, 0.3), 40)
    rows = []
    for mix in mixes:
        out = (mix - 0.25) / np.linalg.norm(mix - 0.25)
        rows.append(np.concatenate([common + 0.3 * mix @ mixing + rng.normal(0, 0.3, P - 4), out]))
    x = torch.from_numpy(np.stack(rows))
    w = torch.from_numpy(rng.integers(200, 400, 40).astype(np.float64))
    return x, w, [int(i) for i in np.nonzero(mixes.argmax(axis=1) != 0)[0]]


def test_family_scores_count_a_family_up_to_its_cap() -> None:
    x, _, minority = skewed_round()
    fams = fingerprints(x, x.median(dim=0).values, SIZES)
    assert fams["output_direction"].cap == OUTPUT_CAP
    assert all(f.cap == math.inf for n, f in fams.items() if n != "output_direction")
    j = list(fams).index("output_direction")
    raw = robust_z(fams["output_direction"].values, 0).max(dim=1).values
    assert float(raw[minority].min()) > 10  # the shortest half sits in the majority
    scores = family_scores(fams)
    assert torch.equal(scores[:, j], raw.clamp_max(OUTPUT_CAP))
    uncapped = {n: Family(f.values, f.side, f.combine) for n, f in fams.items()}
    assert torch.equal(family_scores(uncapped)[:, j], raw)
    others = [i for i in range(scores.shape[1]) if i != j]
    assert torch.equal(scores[:, others], family_scores(uncapped)[:, others])


def test_honest_label_skew_alone_flags_nobody() -> None:
    """Regression: on N-BaIoT across 50 devices the screen flagged the 14 honest devices whose
    traffic is mostly an attack class in the first round, on their output direction alone
    (robust z 20–38, the majority's spread a few hundredths)."""
    x, w, minority = skewed_round()
    assert len(minority) == 6
    screen = AnomalyScreen()
    screen.aggregate(torch.zeros(P, dtype=torch.float64), x, w, RoundContext(sizes=SIZES))
    assert screen.flagged == ()


def test_label_skew_with_a_raised_root_loss_is_flagged() -> None:
    """A label-flipped update looks like an honest update of another majority class and
    raises the validators' root loss as well: together they are flagged."""
    x, w, minority = skewed_round()
    loss = torch.full((40,), 0.5, dtype=torch.float64) + torch.linspace(0, 0.05, 40)
    flipped = minority[:3]
    loss[flipped] = 1.5
    screen = AnomalyScreen()
    ctx = RoundContext(sizes=SIZES, root_loss=loss)
    screen.aggregate(torch.zeros(P, dtype=torch.float64), x, w, ctx)
    assert set(screen.flagged) == set(flipped)
