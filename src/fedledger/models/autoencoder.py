"""Deep autoencoder for benign-only anomaly detection, as in N-BaIoT."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from math import prod

from torch import nn

__all__ = ["Autoencoder"]


class Autoencoder(nn.Sequential):
    """Symmetric fully-connected autoencoder trained on benign traffic only.

    Meidan et al., 2018, "N-BaIoT: Network-based Detection of IoT Botnet Attacks Using Deep
    Autoencoders": each device's autoencoder learns to reconstruct its benign traffic; a sample
    whose reconstruction error exceeds ``mean + k·std`` of the benign errors is an anomaly. The
    output has the input's shape.

    Parameters
    ----------
    feature_shape
        Shape of one sample.
    hidden
        Encoder widths; the decoder mirrors them (``[64, 16]`` → F-64-16-64-F).
    """

    def __init__(self, feature_shape: Sequence[int], hidden: Sequence[int]) -> None:
        widths = [prod(feature_shape), *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in itertools.pairwise(widths):
            layers += [nn.Linear(a, b), nn.Tanh()]
        rev = widths[::-1]
        for i, (a, b) in enumerate(itertools.pairwise(rev)):
            layers.append(nn.Linear(a, b))
            if i < len(rev) - 2:
                layers.append(nn.Tanh())
        layers.append(nn.Unflatten(1, tuple(feature_shape)))
        super().__init__(*layers)
