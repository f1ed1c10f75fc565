"""Flat views of a model's parameters: the form updates travel in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ParamLayout"]


@dataclass(frozen=True)
class ParamLayout:
    """Names, shapes and offsets of a model's trainable parameters in one flat vector.

    Examples
    --------
    >>> layout = ParamLayout.of(model)
    >>> flat = layout.flatten(dict(model.named_parameters()))   # [P]
    >>> params = layout.unflatten(flat)                          # name -> view of flat
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    sizes: tuple[int, ...]

    @classmethod
    def of(cls, model: nn.Module) -> ParamLayout:
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        return cls(
            names=tuple(n for n, _ in named),
            shapes=tuple(tuple(p.shape) for _, p in named),
            sizes=tuple(p.numel() for _, p in named),
        )

    @property
    def total(self) -> int:
        return sum(self.sizes)

    def flatten(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``[P]`` vector (or ``[K, P]`` when every tensor has a leading batch dimension K)."""
        first = params[self.names[0]]
        lead = first.shape[: first.dim() - len(self.shapes[0])]
        return torch.cat([params[n].reshape(*lead, -1) for n in self.names], dim=-1)

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Name → tensor views into ``flat`` (``[P]`` or ``[K, P]``); no copy."""
        lead = flat.shape[:-1]
        out: dict[str, torch.Tensor] = {}
        chunks = torch.split(flat, list(self.sizes), dim=-1)
        for name, chunk, shape in zip(self.names, chunks, self.shapes, strict=True):
            out[name] = chunk.view(*lead, *shape)
        return out

    def load_into(self, model: nn.Module, flat: torch.Tensor) -> None:
        """Copy ``flat`` into the model's parameters in place."""
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in self.unflatten(flat).items():
                params[name].copy_(value)
