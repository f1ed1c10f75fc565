"""Multi-layer perceptron for tabular traffic features."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from math import prod

from torch import nn

__all__ = ["MLP"]


class MLP(nn.Sequential):
    """``Flatten → (Linear → ReLU)* → Linear``: the usual IDS classifier on flow features.

    Layers are created in order, so ``torch.manual_seed(s)`` followed by ``MLP(...)`` gives the
    same initial weights as the equivalent hand-written ``nn.Sequential``.

    Parameters
    ----------
    feature_shape
        Shape of one sample (``(122,)`` for NSL-KDD, ``(1, 28, 28)`` for MNIST).
    hidden
        Widths of the hidden layers.
    n_outputs
        Number of classes (or of reconstructed features for an autoencoder half).

    Examples
    --------
    >>> MLP((122,), [64, 32], 5)(torch.zeros(2, 122)).shape
    torch.Size([2, 5])
    """

    def __init__(self, feature_shape: Sequence[int], hidden: Sequence[int], n_outputs: int) -> None:
        widths = [prod(feature_shape), *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in itertools.pairwise(widths):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], n_outputs))
        super().__init__(*layers)
