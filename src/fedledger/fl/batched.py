"""Vectorised local training: every device's model as one slice of stacked parameters."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from fedledger.fl.plan import BatchPlan
from fedledger.fl.tasks import Task
from fedledger.fl.trainers import LocalTrainer
from fedledger.strategies.fedprox import proximal_gradient

__all__ = ["BatchedTrainer", "StackedTrainer", "VmapTrainer", "stackable"]

_ELEMENTWISE = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.GELU,
    nn.ELU,
    nn.SiLU,
    nn.Identity,
)


def stackable(model: nn.Module) -> bool:
    """True if :class:`StackedTrainer` can train ``model``.

    That is an ``nn.Sequential`` of Linear layers, out-of-place element-wise activations,
    ``Flatten`` and a final ``Unflatten`` (only activations after it), with every parameter
    trainable. Anything else is trained by another trainer.
    """
    if not isinstance(model, nn.Sequential):
        return False
    if not any(isinstance(m, nn.Linear) for m in model):
        return False
    if any(not p.requires_grad for p in model.parameters()):
        return False
    unflattened = False
    for m in model:
        if getattr(m, "inplace", False):
            return False
        if isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1 and not unflattened:
            continue
        if isinstance(m, nn.Unflatten) and m.dim == 1 and not unflattened:
            unflattened = True
            continue
        if isinstance(m, nn.Linear) and not unflattened:
            continue
        if isinstance(m, _ELEMENTWISE) or (isinstance(m, nn.Dropout) and m.p == 0):
            continue
        return False
    return True


class BatchedTrainer(LocalTrainer):
    """Steps all devices together; at step ``t`` only the plan's active prefix takes part."""

    @abstractmethod
    def _step(
        self,
        params: dict[str, torch.Tensor],
        start: dict[str, torch.Tensor],
        batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        lr: float,
        mu: float,
    ) -> None:
        """One SGD step of ``k`` devices on ``Σ w · loss``, updating ``params`` in place.

        ``batch`` is ``(x [k, B, ...], y [k, B], w [k, B])``; ``start`` holds the global
        parameters the round began from (FedProx's anchor).
        """

    def train(
        self,
        global_params: torch.Tensor,
        plan: BatchPlan,
        x: torch.Tensor,
        y: torch.Tensor,
        lr: float,
        mu: float,
    ) -> torch.Tensor:
        start = self.layout.unflatten(global_params.detach().clone())
        # one contiguous [D, ...] tensor per parameter: the active prefix [:k] stays contiguous
        stacked = {
            n: v.unsqueeze(0).repeat(len(plan.order), *([1] * v.dim())) for n, v in start.items()
        }
        feat = x.shape[1:]
        self.model.train()
        for t, k in enumerate(plan.active):
            idx = plan.index[:k, t].reshape(-1)
            xb = x.index_select(0, idx).view(k, -1, *feat)
            yb = y.index_select(0, idx).view(k, -1)
            params = {n: v[:k] for n, v in stacked.items()}
            self._step(params, start, (xb, yb, plan.weight[:k, t]), lr, mu)
        return self.layout.flatten(stacked)


class StackedTrainer(BatchedTrainer):
    """All devices' copies of a stackable ``nn.Sequential`` as batched matrix products.

    Forward: ``z = baddbmm(b, h, Wᵀ)`` per linear layer, on ``[k, B, ·]`` batches. Autograd is
    asked only for ``∂L/∂z`` (cheap, input-side products); each weight is then updated in
    place by one fused GEMM, ``W ← W − lr · ∂L/∂zᵀ h``, so no weight gradient is ever
    materialised. Several times faster than the sequential loop on the W1 MLP
    (benchmarks/README.md).
    """

    name = "stacked"

    def __init__(self, model: nn.Module, task: Task) -> None:
        if not stackable(model):
            raise TypeError(f"{type(model).__name__} is not a stack of linear layers")
        super().__init__(model, task)
        self._layers = list(model.children())

    def _step(
        self,
        params: dict[str, torch.Tensor],
        start: dict[str, torch.Tensor],
        batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        lr: float,
        mu: float,
    ) -> None:
        xb, yb, wb = batch
        k, b = xb.shape[0], xb.shape[1]
        inputs: list[torch.Tensor] = []  # h feeding each linear layer
        outputs: list[torch.Tensor] = []  # z of each linear layer
        names: list[str] = []
        with torch.enable_grad():
            h = xb
            for i, m in enumerate(self._layers):
                if isinstance(m, nn.Linear):
                    w, bias = params[f"{i}.weight"], params.get(f"{i}.bias")
                    inputs.append(h)
                    h = (
                        torch.bmm(h, w.transpose(1, 2))
                        if bias is None
                        else torch.baddbmm(bias.unsqueeze(1), h, w.transpose(1, 2))
                    )
                    if not h.requires_grad:
                        h.requires_grad_()
                    outputs.append(h)
                    names.append(str(i))
                elif isinstance(m, nn.Flatten):
                    h = h.reshape(k, b, -1)
                elif isinstance(m, nn.Unflatten):
                    h = h.reshape(k, b, *m.unflattened_size)
                else:
                    h = m(h)
            per_sample = self.task.per_sample_loss(
                h.reshape(k * b, *h.shape[2:]), xb.reshape(k * b, *xb.shape[2:]), yb.reshape(-1)
            )
            loss = (wb.reshape(-1) * per_sample).sum()
            dz = torch.autograd.grad(loss, outputs)
        with torch.no_grad():
            for name, h_in, g in zip(names, inputs, dz, strict=True):
                for suffix in (".weight", ".bias"):
                    p = params.get(name + suffix)
                    if p is None:
                        continue
                    prox = proximal_gradient(p, start[name + suffix], mu) if mu > 0 else None
                    if suffix == ".weight":
                        p.baddbmm_(g.transpose(1, 2), h_in.detach(), alpha=-lr)
                    else:
                        p.add_(g.sum(dim=1), alpha=-lr)
                    if prox is not None:
                        p.add_(prox, alpha=-lr)


class VmapTrainer(BatchedTrainer):
    """``torch.func.vmap(grad(functional_call))`` over stacked parameters: any vmappable model.

    Models whose forward updates buffers (batch normalisation in training mode) or calls
    operations without a batching rule cannot use it;
    :func:`fedledger.fl.trainer_choice.make_trainer` refuses them for
    ``train.engine = "batched"``.
    """

    name = "vmap"

    def __init__(self, model: nn.Module, task: Task) -> None:
        super().__init__(model, task)
        buffers = {n: b.detach() for n, b in model.named_buffers()}
        task_loss = task.per_sample_loss

        def batch_loss(
            params: dict[str, torch.Tensor], xb: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor
        ) -> torch.Tensor:
            out = functional_call(model, (params, buffers), (xb,))
            return (wb * task_loss(out, xb, yb)).sum()

        self._vgrad: Any = vmap(grad(batch_loss))

    def grads(
        self, params: dict[str, torch.Tensor], xb: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Per-device gradients of ``Σ wb · loss`` (``xb`` is ``[k, B, ...]``)."""
        grads: dict[str, torch.Tensor] = self._vgrad(params, xb, yb, wb)
        return grads

    def _step(
        self,
        params: dict[str, torch.Tensor],
        start: dict[str, torch.Tensor],
        batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        lr: float,
        mu: float,
    ) -> None:
        grads = self.grads(params, *batch)
        with torch.no_grad():
            for name, p in params.items():
                prox = proximal_gradient(p, start[name], mu) if mu > 0 else None
                p.add_(grads[name], alpha=-lr)
                if prox is not None:
                    p.add_(prox, alpha=-lr)
