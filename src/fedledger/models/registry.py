"""Config names → model builders, in one place."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from fedledger.errors import RegistryError
from fedledger.models.autoencoder import Autoencoder
from fedledger.models.cnn import CNN
from fedledger.models.mlp import MLP

__all__ = ["MODELS", "ModelSpec", "create_model"]

Builder = Callable[[tuple[int, ...], int, Sequence[int]], nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it and whether it is a benign-only anomaly detector."""

    build: Builder
    anomaly_detector: bool
    description: str


MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(
        lambda shape, n_classes, hidden: MLP(shape, hidden, n_classes),
        False,
        "fully-connected classifier for flow features",
    ),
    "cnn": ModelSpec(
        lambda shape, n_classes, hidden: CNN(shape, hidden or [128], n_classes),
        False,
        "two-block CNN for images (digits, MNIST, FEMNIST)",
    ),
    "autoencoder": ModelSpec(
        lambda shape, n_classes, hidden: Autoencoder(shape, hidden),
        True,
        "benign-only autoencoder with a mean + k·std threshold (N-BaIoT)",
    ),
}


def create_model(
    name: str, feature_shape: tuple[int, ...], n_classes: int, hidden: Sequence[int]
) -> nn.Module:
    """Build the model registered as ``name`` for samples of ``feature_shape``."""
    spec = MODELS.get(name)
    if spec is None:
        raise RegistryError("model", name, list(MODELS))
    return spec.build(feature_shape, n_classes, hidden)
