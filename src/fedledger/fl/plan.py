"""The mini-batch schedule of one round, shared by the batched and sequential trainers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["BatchPlan", "make_plan"]


@dataclass(frozen=True)
class BatchPlan:
    """Which rows every device visits at every local step.

    Devices are ordered by number of steps, longest first, so the devices still training at
    step ``t`` are always a prefix ``[:active[t]]`` of the stacked parameters: a view, never a
    copy.

    Attributes
    ----------
    order
        Position of each planned device in the caller's device list, longest schedule first.
    index
        int64 ``[D, T, B]`` row indices into the shared training arrays (0 where padded).
    weight
        float32 ``[D, T, B]``: ``1 / (rows in that batch)`` for real rows, 0 for padding, so a
        weighted sum of per-sample losses is the batch mean.
    steps
        int64 ``[D]`` number of local steps of each device.
    active
        ``active[t]`` = number of devices that take step ``t``.
    """

    order: np.ndarray
    index: torch.Tensor
    weight: torch.Tensor
    steps: np.ndarray
    active: list[int]

    @property
    def max_steps(self) -> int:
        return int(self.steps[0]) if len(self.steps) else 0


def make_plan(
    rows: Sequence[np.ndarray],
    batch_size: int,
    epochs: int,
    rngs: Sequence[np.random.Generator],
) -> BatchPlan:
    """Shuffle every device's rows once per epoch and cut them into batches of ``batch_size``.

    The last batch of an epoch may be smaller (nothing is dropped), as with a PyTorch
    ``DataLoader(shuffle=True, drop_last=False)``.

    Parameters
    ----------
    rows
        Row indices owned by each device (non-empty).
    batch_size, epochs
        Local mini-batch size and number of local epochs.
    rngs
        One generator per device; epoch ``e`` visits ``rows[d][rngs[d].permutation(n)]``. One
        stream per device lets anyone replay a device's batches without simulating the others
        (``benchmarks/w1_plain.py`` does, to compare with a plain PyTorch loop).
    """
    if len(rngs) != len(rows):
        raise ValueError(f"{len(rows)} devices but {len(rngs)} generators")
    per_epoch = np.array([-(-len(r) // batch_size) for r in rows], dtype=np.int64)
    width = min(batch_size, max(len(r) for r in rows))  # a huge batch_size pads no further
    steps = per_epoch * epochs
    order = np.argsort(-steps, kind="stable")
    t_max = int(steps.max())
    index = np.zeros((len(rows), t_max, width), dtype=np.int64)
    weight = np.zeros((len(rows), t_max, width), dtype=np.float32)
    for slot, d in enumerate(order):
        r = np.asarray(rows[d], dtype=np.int64)
        n, s = len(r), int(per_epoch[d])
        padded = np.full(s * width, -1, dtype=np.int64)
        for e in range(epochs):
            padded[:n] = r[rngs[d].permutation(n)]
            block = padded.reshape(s, width)
            real = block >= 0
            counts = real.sum(axis=1, keepdims=True)
            index[slot, e * s : (e + 1) * s] = np.where(real, block, 0)
            weight[slot, e * s : (e + 1) * s] = real / counts
    sorted_steps = steps[order]
    active = [int((sorted_steps > t).sum()) for t in range(t_max)]
    return BatchPlan(
        order=order,
        index=torch.from_numpy(index),
        weight=torch.from_numpy(weight),
        steps=sorted_steps,
        active=active,
    )
