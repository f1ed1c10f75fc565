"""Shared fixtures: tiny generated datasets (never the real files, which live in ../shared)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from fedledger.data.types import FederatedDataset

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def make_dataset(
    n_clients: int = 6,
    n_features: int = 10,
    n_classes: int = 3,
    seed: int = 0,
    sizes: list[int] | None = None,
    image: tuple[int, int, int] | None = None,
) -> FederatedDataset:
    """A small, learnable, non-IID classification problem with unequal device sizes."""
    rng = np.random.default_rng(seed)
    sizes = sizes or [int(s) for s in rng.integers(5, 90, size=n_clients)]
    dim = int(np.prod(image)) if image else n_features
    centres = rng.normal(0, 2.0, size=(n_classes, dim))

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, n_classes, size=n)
        x = centres[y] + rng.normal(0, 1.0, size=(n, dim))
        shape = (n, *image) if image else (n, dim)
        return x.reshape(shape).astype(np.float32), y.astype(np.int64)

    x_train, y_train = draw(sum(sizes))
    x_test, y_test = draw(200)
    bounds = np.cumsum([0, *sizes])
    clients = tuple(np.arange(a, b, dtype=np.int64) for a, b in itertools.pairwise(bounds))
    return FederatedDataset(
        name="toy",
        classes=tuple(["benign"] + [f"attack{i}" for i in range(1, n_classes)]),
        x_train=x_train,
        y_train=y_train,
        clients=clients,
        clusters=tuple("a" if i % 2 else "b" for i in range(len(sizes))),
        device_names=tuple(f"dev-{i:03d}" for i in range(len(sizes))),
        x_test=x_test,
        y_test=y_test,
        benign_class=0,
        synthetic=True,
    )


@pytest.fixture
def toy() -> FederatedDataset:
    return make_dataset()
