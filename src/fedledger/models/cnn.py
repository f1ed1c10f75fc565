"""Small convolutional network for image datasets (MNIST, FEMNIST, digits)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fedledger.errors import ModelError

__all__ = ["CNN"]


class CNN(nn.Module):
    """Two conv blocks and a dense head, in the spirit of the LEAF/FedAvg CNN.

    ``Conv(c→16, 3) → ReLU → MaxPool(2) → Conv(16→32, 3) → ReLU → MaxPool(2) → Linear → ReLU →
    Linear``. No batch normalisation, so every device's model can be trained in one vectorised
    call (McMahan et al., 2017, "Communication-Efficient Learning of Deep Networks from
    Decentralized Data", use the same shape of model).

    Parameters
    ----------
    feature_shape
        ``(channels, height, width)``; height and width must be at least 4.
    hidden
        Width of the dense layer (the first entry is used; default 128).
    n_classes
        Number of output classes.
    """

    def __init__(self, feature_shape: Sequence[int], hidden: Sequence[int], n_classes: int) -> None:
        super().__init__()
        if len(feature_shape) != 3 or min(feature_shape[1:]) < 4:
            raise ModelError(
                f"cnn needs image samples shaped (channels, height>=4, width>=4), "
                f"got {tuple(feature_shape)}; use model.name = mlp for tabular data"
            )
        c, h, w = feature_shape
        width = hidden[0] if hidden else 128
        self.features = nn.Sequential(
            nn.Conv2d(c, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.head = nn.Sequential(
            nn.Linear(32 * (h // 4) * (w // 4), width), nn.ReLU(), nn.Linear(width, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(x))
        return out
