"""The batched trainers give the same models as the sequential one, and follow the plan."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from fedledger.fl import (
    ClassificationTask,
    ParamLayout,
    ReconstructionTask,
    SequentialTrainer,
    StackedTrainer,
    VmapTrainer,
    make_plan,
    make_trainer,
    stackable,
)
from fedledger.models import CNN, MLP, Autoencoder
from fedledger.strategies import proximal_term
from tests.conftest import make_dataset


def _train(trainer_cls, model, task, data, lr=0.1, mu=0.0, epochs=1, batch=8):  # type: ignore[no-untyped-def]
    layout = ParamLayout.of(model)
    g = layout.flatten(dict(model.named_parameters())).detach().clone()
    plan = make_plan(
        list(data.clients),
        batch,
        epochs,
        [np.random.default_rng([3, d]) for d in range(data.n_clients)],
    )
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    return trainer_cls(model, task).train(g, plan, x, y, lr, mu), plan


@pytest.mark.parametrize(
    "model",
    [
        nn.Sequential(nn.Flatten(), nn.Linear(10, 8), nn.ReLU(inplace=True), nn.Linear(8, 3)),
        nn.Sequential(nn.Linear(10, 8), nn.Unflatten(1, (2, 4)), nn.Linear(4, 3)),
        nn.Sequential(nn.Linear(10, 8), nn.LayerNorm(8), nn.Linear(8, 3)),
    ],
)
def test_models_the_stacked_trainer_cannot_take_go_elsewhere(model: nn.Module) -> None:
    assert not stackable(model)


def test_frozen_layers_are_not_stacked_and_stay_frozen() -> None:
    data = make_dataset(sizes=[20, 30])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))
    model[0].weight.requires_grad_(False)
    assert not stackable(model)
    task = ClassificationTask(data.classes, 0)
    trainer = make_trainer("auto", model, task, torch.zeros(2, 10), torch.zeros(2).long())
    before = model[0].weight.detach().clone()
    out, _ = _train(type(trainer), model, task, data)
    assert out.shape[1] == ParamLayout.of(model).total  # frozen weight not in the update
    torch.testing.assert_close(model[0].weight, before)


def test_a_batch_larger_than_every_device_pads_only_to_the_longest() -> None:
    rows = [np.arange(5), np.arange(5, 12)]
    plan = make_plan(rows, 100_000, 1, [np.random.default_rng(d) for d in range(2)])
    assert plan.index.shape == (2, 1, 7)
    torch.testing.assert_close(plan.weight.sum(dim=2), torch.ones(2, 1))


@pytest.mark.parametrize("mu", [0.0, 0.5])
def test_stacked_equals_sequential_for_an_mlp(mu: float) -> None:
    data = make_dataset(sizes=[3, 40, 17, 64, 1, 33])
    torch.manual_seed(0)
    model = MLP((10,), [16, 8], 3)
    task = ClassificationTask(data.classes, 0)
    fast, _ = _train(StackedTrainer, model, task, data, mu=mu, epochs=2)
    slow, _ = _train(SequentialTrainer, model, task, data, mu=mu, epochs=2)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mu", [0.0, 0.5])
def test_vmap_equals_sequential_for_a_cnn(mu: float) -> None:
    data = make_dataset(sizes=[9, 20, 4], image=(1, 8, 8))
    torch.manual_seed(0)
    model = CNN((1, 8, 8), [16], 3)
    task = ClassificationTask(data.classes, 0)
    fast, _ = _train(VmapTrainer, model, task, data, mu=mu, epochs=2)
    slow, _ = _train(SequentialTrainer, model, task, data, mu=mu, epochs=2)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_stacked_equals_sequential_for_the_autoencoder() -> None:
    data = make_dataset(sizes=[30, 50, 12])
    torch.manual_seed(0)
    model = Autoencoder((10,), [6, 3])
    task = ReconstructionTask(benign_class=0)
    clients = [task.train_rows(r, data.y_train) for r in data.clients]
    data = type(data)(**{**data.__dict__, "clients": tuple(clients)})
    fast, _ = _train(StackedTrainer, model, task, data)
    slow, _ = _train(SequentialTrainer, model, task, data)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_fedprox_local_steps_follow_the_definition() -> None:
    """Two SGD steps on F_k(w) + μ/2‖w − w_t‖², computed with autograd on the definition."""
    data = make_dataset(sizes=[16])
    torch.manual_seed(1)
    model = MLP((10,), [4], 3)
    task = ClassificationTask(data.classes, 0)
    mu, lr = 2.0, 0.3
    trained, plan = _train(StackedTrainer, model, task, data, lr=lr, mu=mu, batch=8)
    layout = ParamLayout.of(model)
    w0 = layout.flatten(dict(model.named_parameters())).detach()
    w = w0.clone()
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    for t in range(2):
        idx = plan.index[0, t]
        wv = w.clone().requires_grad_()
        params = layout.unflatten(wv)
        out = torch.func.functional_call(model, params, (x[idx],))
        objective = nn.functional.cross_entropy(out, y[idx]) + proximal_term(wv, w0, mu)
        (g,) = torch.autograd.grad(objective, wv)
        w = w - lr * g
    torch.testing.assert_close(trained[0], w, atol=1e-6, rtol=1e-5)


def test_make_trainer_picks_the_fastest_that_fits() -> None:
    task = ClassificationTask(("a", "b"), 0)
    x, y = torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.int64)
    assert make_trainer("auto", MLP((1, 8, 8), [4], 2), task, x, y).name == "stacked"
    assert make_trainer("auto", CNN((1, 8, 8), [4], 2), task, x, y).name == "sequential"
    assert make_trainer("batched", CNN((1, 8, 8), [4], 2), task, x, y).name == "vmap"
    bn = nn.Sequential(nn.Flatten(), nn.Linear(64, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    assert not stackable(bn)
    assert make_trainer("auto", bn, task, x, y).name == "sequential"
    assert make_trainer("sequential", MLP((1, 8, 8), [4], 2), task, x, y).name == "sequential"
    with pytest.raises(Exception, match="sequential"):
        make_trainer("batched", bn, task, x, y)


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 70), min_size=1, max_size=8),
    batch=st.integers(1, 16),
    epochs=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_plan_visits_every_row_once_per_epoch(
    sizes: list[int], batch: int, epochs: int, seed: int
) -> None:
    bounds = np.cumsum([0, *sizes])
    rows = [np.arange(a, b) for a, b in itertools.pairwise(bounds)]
    plan = make_plan(
        rows, batch, epochs, [np.random.default_rng([seed, d]) for d in range(len(rows))]
    )
    assert list(plan.steps) == sorted(plan.steps, reverse=True)
    assert plan.active == sorted(plan.active, reverse=True)
    for slot, d in enumerate(plan.order):
        steps = int(plan.steps[slot])
        w = plan.weight[slot, :steps]
        torch.testing.assert_close(w.sum(dim=1), torch.ones(steps))
        assert float(plan.weight[slot, steps:].abs().sum()) == 0.0
        visited = plan.index[slot, :steps][w > 0].numpy()
        assert sorted(visited.tolist()) == sorted(rows[d].tolist() * epochs)
        assert all(plan.active[t] > slot for t in range(steps))
