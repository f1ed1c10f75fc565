"""Local training of many devices from the same global parameters.

Three trainers follow the same :class:`~fedledger.fl.plan.BatchPlan` and the same update rule
(plain SGD on the batch-mean loss, plus FedProx's proximal gradient when ``mu > 0``), so they
produce the same models to float tolerance:

- :class:`~fedledger.fl.batched.StackedTrainer`: ``nn.Sequential`` stacks of linear layers and
  element-wise activations (MLPs, autoencoders) as batched matrix products; the fastest.
- :class:`~fedledger.fl.batched.VmapTrainer`: any model ``torch.func.vmap`` can batch (CNNs).
- :class:`SequentialTrainer`: any ``nn.Module``, one device after another.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from fedledger.fl.params import ParamLayout
from fedledger.fl.plan import BatchPlan
from fedledger.fl.tasks import Task
from fedledger.strategies.fedprox import proximal_gradient

__all__ = ["LocalTrainer", "SequentialTrainer"]


class LocalTrainer(ABC):
    """Runs every planned device's local training from the same global parameters.

    Examples
    --------
    >>> trainer = SequentialTrainer(model, ClassificationTask(classes, 0))
    >>> trained = trainer.train(global_params, plan, x, y, lr=0.05, mu=0.0)   # [D, P]
    """

    name = "base"

    def __init__(self, model: nn.Module, task: Task) -> None:
        self.model = model
        self.task = task
        self.layout = ParamLayout.of(model)

    @abstractmethod
    def train(
        self,
        global_params: torch.Tensor,
        plan: BatchPlan,
        x: torch.Tensor,
        y: torch.Tensor,
        lr: float,
        mu: float,
    ) -> torch.Tensor:
        """Return ``[D, P]`` trained parameters; row ``i`` belongs to device ``plan.order[i]``."""


class SequentialTrainer(LocalTrainer):
    """Trains devices one after another on the model itself (any ``nn.Module`` works)."""

    name = "sequential"

    def train(
        self,
        global_params: torch.Tensor,
        plan: BatchPlan,
        x: torch.Tensor,
        y: torch.Tensor,
        lr: float,
        mu: float,
    ) -> torch.Tensor:
        model, layout = self.model, self.layout
        named = dict(model.named_parameters())
        params = [named[n] for n in layout.names]
        start = list(layout.unflatten(global_params.detach().clone()).values())
        out = torch.empty(len(plan.order), layout.total, dtype=global_params.dtype)
        model.train()
        for i in range(len(plan.order)):
            layout.load_into(model, global_params)
            for t in range(int(plan.steps[i])):
                idx = plan.index[i, t][plan.weight[i, t] > 0]
                xb, yb = x.index_select(0, idx), y.index_select(0, idx)
                loss = self.task.per_sample_loss(model(xb), xb, yb).mean()
                grads = torch.autograd.grad(loss, params)
                with torch.no_grad():
                    for p, g, p0 in zip(params, grads, start, strict=True):
                        step = g + proximal_gradient(p, p0, mu) if mu > 0 else g
                        p.sub_(lr * step)
            out[i] = layout.flatten(
                {n: p.detach() for n, p in zip(layout.names, params, strict=True)}
            )
        return out
