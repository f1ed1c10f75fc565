"""Models devices train: MLP, CNN and a benign-only autoencoder. Any ``nn.Module`` works too."""

from fedledger.models.autoencoder import Autoencoder
from fedledger.models.cnn import CNN
from fedledger.models.mlp import MLP
from fedledger.models.registry import MODELS, ModelSpec, create_model

__all__ = ["CNN", "MLP", "MODELS", "Autoencoder", "ModelSpec", "create_model"]
