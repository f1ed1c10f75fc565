"""Which local trainer a model gets: stacked, vmapped or sequential."""

from __future__ import annotations

import torch
from torch import nn

from fedledger.errors import ModelError
from fedledger.fl.batched import StackedTrainer, VmapTrainer, stackable
from fedledger.fl.tasks import Task
from fedledger.fl.trainers import LocalTrainer, SequentialTrainer

__all__ = ["make_trainer"]


def _vmap_works(model: nn.Module, task: Task, x: torch.Tensor, y: torch.Tensor) -> bool:
    """True if one vmapped gradient step runs on ``model`` (and no buffers need updating)."""
    if any(True for _ in model.buffers()):
        return False
    trainer = VmapTrainer(model, task)
    probe = {n: p.detach().unsqueeze(0) for n, p in model.named_parameters() if p.requires_grad}
    try:
        trainer.grads(probe, x[:2].unsqueeze(0), y[:2].unsqueeze(0), torch.ones(1, 2))
    except Exception:  # any failure to batch means: train one device at a time
        return False
    return True


def make_trainer(
    engine: str, model: nn.Module, task: Task, x: torch.Tensor, y: torch.Tensor
) -> LocalTrainer:
    """Pick the trainer for ``model``; the choice depends only on the config and the model.

    ``auto``: the stacked trainer for stacks of linear layers, else sequential. ``batched``:
    stacked, else ``torch.func.vmap`` (fails if the model cannot be batched). On CPU, vmapped
    convolutions become grouped convolutions and are slower than the sequential loop (7.0 vs
    5.0 s per MNIST CNN round here), so ``auto`` does not pick vmap.
    """
    if engine == "sequential":
        return SequentialTrainer(model, task)
    if stackable(model):
        return StackedTrainer(model, task)
    if engine == "auto":
        return SequentialTrainer(model, task)
    if _vmap_works(model, task, x, y):
        return VmapTrainer(model, task)
    raise ModelError(
        f"{type(model).__name__} cannot be trained with torch.func.vmap (batch norm or an "
        f'unbatchable operation); set train.engine = "sequential" or "auto"'
    )
