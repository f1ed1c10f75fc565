"""Validators' statistics pool exactly: disjoint slices add up to the whole split."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from fedledger.fl.tasks import ClassificationTask, EvalStats, ReconstructionTask, task_from_labels


def _model(n_in: int, n_out: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, 8), nn.ReLU(), nn.Linear(8, n_out)).eval()


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 300),
    parts=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_pooled_slices_equal_the_whole_split(n: int, parts: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(n, 5)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 3, size=n))
    for task, model, context in (
        (ClassificationTask(["benign", "a", "b"], 0), _model(5, 3, seed), {}),
        (ReconstructionTask(0), _model(5, 5, seed), {"threshold": 0.8}),
    ):
        whole = task.eval_stats(model, x, y, context)
        slices = np.array_split(rng.permutation(n), parts)
        pooled: EvalStats | None = None
        for rows in slices:
            idx = torch.from_numpy(rows)
            s = task.eval_stats(model, x[idx], y[idx], context)
            pooled = s if pooled is None else pooled + s
        assert pooled is not None
        assert np.array_equal(pooled.confusion, whole.confusion)
        for key, value in whole.sums.items():  # float32 losses of other batches: rounding only
            assert np.isclose(pooled.sums[key], value, rtol=1e-5, atol=1e-6)
        rebuilt = task_from_labels(task.labels())
        a, b = rebuilt.metrics(pooled, context), task.metrics(whole, context)
        assert a["accuracy"] == b["accuracy"] and a["confusion"] == b["confusion"]
        assert EvalStats.from_json(pooled.to_json()).to_json() == pooled.to_json()
