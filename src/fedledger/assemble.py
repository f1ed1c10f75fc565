"""The one place that turns a :class:`~fedledger.config.Config` into a running system."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from fedledger.attacks import ATTACKS, choose_malicious, create_attack
from fedledger.config import Config, dump_config
from fedledger.data import DATASETS, FederatedDataset, build_federated
from fedledger.errors import ConfigError
from fedledger.fl.engine import Simulation
from fedledger.fl.probe import choose_root_rows
from fedledger.fl.run_folder import RunFolder
from fedledger.fl.runner import Runner
from fedledger.fl.tasks import ClassificationTask, ReconstructionTask, Task
from fedledger.fl.trainer_choice import make_trainer
from fedledger.incentives import EXACT_LIMIT, RewardBook, RewardSettings
from fedledger.models import MODELS, create_model
from fedledger.strategies import STRATEGIES, create_strategy

if TYPE_CHECKING:
    from fedledger.fl.secure import SecureAggregator

__all__ = [
    "build_secure",
    "build_simulation",
    "build_task",
    "check_names",
    "model_spec",
    "prepare_run",
]


def build_task(config: Config, data: FederatedDataset) -> Task:
    """Classification, or benign-only reconstruction for an anomaly-detector model."""
    spec = MODELS.get(config.model.name)
    if spec is not None and spec.anomaly_detector:
        if data.benign_class is None:
            raise ConfigError(
                "model.name",
                f"{config.model.name} trains on benign traffic only, but {data.name} has no "
                f"benign class",
            )
        return ReconstructionTask(data.benign_class)
    return ClassificationTask(data.classes, data.benign_class)


def build_simulation(
    config: Config, model: nn.Module | None = None, data: FederatedDataset | None = None
) -> Simulation:
    """Load and partition the data, build model, task, trainer and strategy.

    Parameters
    ----------
    config
        The validated run configuration.
    model
        Your own ``nn.Module`` instead of ``config.model``; its current weights are the start.
    data
        An already built dataset (skips loading).
    """
    check_names(config)
    torch.set_num_threads(config.train.threads)
    if data is None:
        data = build_federated(config.data, config.train.seed)
    custom = model
    if model is None:
        torch.manual_seed(config.train.seed)
        model = create_model(
            config.model.name, data.feature_shape, data.n_classes, config.model.hidden
        )
    task = build_task(config, data)
    x = torch.from_numpy(data.x_train[:2])
    y = torch.from_numpy(data.y_train[:2])
    trainer = make_trainer(config.train.engine, model, task, x, y)
    strategy = create_strategy(config.strategy)
    sim = Simulation(data, model, task, trainer, strategy, config.train)
    attack = create_attack(config.attack)
    if attack is not None and attack.needs_classes and task.name != "classification":
        raise ConfigError(
            "attack.name", f"{attack.name} flips class labels; {config.model.name} has none"
        )
    malicious = choose_malicious(len(data.clients), config.attack.fraction, config.train.seed)
    sim.set_attack(attack, malicious if attack is not None else [], config.attack.start_round)
    sim.honest_only = config.attack.honest_only
    method = incentives_method(config, rebuildable=custom is None)
    if method != "none":
        mode = config.security.secure_aggregation
        if mode not in SCORED_MODES:
            raise ConfigError(
                "incentives.method",
                "contributions are measured on the devices' own updates, which "
                f'secure_aggregation = {mode!r} hides; set incentives.method = "none" (or '
                '"auto"), or use secure_aggregation = "enclave", which scores them inside',
            )
        if mode == "enclave" and custom is not None:
            raise ConfigError(
                "incentives.method",
                "the enclave scores contributions with a model it rebuilds from [model]; a "
                'model passed in as a module cannot be; set incentives.method = "none"',
            )
        if method == "shapley" and max_round_devices(config, sim) > EXACT_LIMIT:
            raise ConfigError(
                "incentives.method",
                f"exact Shapley needs 2^K model evaluations for K devices per round; at most "
                f'{EXACT_LIMIT} (set train.clients_per_round, or use "gtg")',
            )
        sim.incentives = method
        inc = config.incentives
        sim.book = RewardBook(
            len(data.clients),
            RewardSettings(
                pool=inc.pool,
                stake=inc.stake,
                penalty=inc.penalty,
                participation_threshold=inc.participation_threshold,
                reputation_floor=inc.reputation_floor,
            ),
        )
    if strategy.needs_reference or strategy.needs_root_loss:
        sim.root_rows = choose_root_rows(
            sim.train_rows, config.strategy.root_samples, config.train.seed
        )
    # the enclave can rebuild a registered model to score updates
    spec = model_spec(config, data, task) if custom is None else None
    sim.secure = build_secure(config, sim, spec)
    return sim


def model_spec(config: Config, data: FederatedDataset, task: Task) -> dict[str, Any]:
    """What the enclave needs to rebuild ``config``'s registered model for ``data`` (see
    :class:`~fedledger.fl.secure.base.SecureContext`)."""
    return {
        "name": config.model.name,
        "hidden": list(config.model.hidden),
        "features": list(data.feature_shape),
        "classes": data.n_classes,
        "labels": task.labels(),
    }


SCORED_MODES = ("none", "enclave")
"""Secure-aggregation modes under which somebody sees each device's update to score it: the
simulation (plain updates) or the enclave."""


def incentives_method(config: Config, rebuildable: bool = True) -> str:
    """``incentives.method`` resolved: ``auto`` is GTG-Shapley where each update is visible
    (plain updates, or inside the enclave if it can rebuild the model: ``rebuildable``) and
    ``none`` otherwise (``secagg+`` and ``ckks`` reveal only the sum)."""
    method = config.incentives.method
    if method == "auto":
        mode = config.security.secure_aggregation
        visible = mode == "none" or (mode == "enclave" and rebuildable)
        return "gtg" if visible else "none"
    return method


def max_round_devices(config: Config, sim: Simulation) -> int:
    """The most devices a round of ``sim`` trains (``train.clients_per_round``, capped by the
    devices that have training rows)."""
    eligible = sum(1 for rows in sim.train_rows if len(rows))
    k = config.train.clients_per_round
    return eligible if k == 0 else min(k, eligible)


def build_secure(
    config: Config, sim: Simulation, model_spec: dict[str, Any] | None = None
) -> SecureAggregator | None:
    """The ``[security]`` mode for ``sim`` (``None`` for ``none``); starts its enclave, if any.
    ``model_spec`` describes a registered model the enclave may rebuild (see
    :class:`~fedledger.fl.secure.base.SecureContext`)."""
    sec = config.security
    mode = sec.secure_aggregation
    if mode == "none":
        return None
    from fedledger.fl.secure import SecureContext, make_secure

    if mode in ("secagg+", "ckks"):
        if not getattr(STRATEGIES[config.strategy.name], "averaging", False):
            raise ConfigError(
                "security.secure_aggregation",
                f"{mode} reveals only the sum of the updates, but strategy "
                f"{config.strategy.name!r} needs each update; use enclave, or an averaging "
                f"strategy (fedavg, fedavgm, fedadam)",
            )
        eligible = sum(1 for rows in sim.train_rows if len(rows))
        if eligible < 2 or config.train.clients_per_round == 1:
            raise ConfigError(
                "train.clients_per_round",
                f"{mode} needs at least 2 devices per round (a sum of one update is the update)",
            )
    ctx = SecureContext(
        seed=config.train.seed,
        names=sim.layout.names,
        sizes=sim.layout.sizes,
        security=sec,
        strategy=config.strategy,
        max_weight=sec.max_weight or max(len(rows) for rows in sim.train_rows),
        model=model_spec,
        incentives=sim.incentives if mode == "enclave" else "none",
    )
    return make_secure(ctx)


def prepare_run(
    config: Config,
    out: Path,
    *,
    resume: bool = False,
    model: nn.Module | None = None,
    data: FederatedDataset | None = None,
) -> tuple[Runner, int]:
    """Build the system and its run folder; return the runner and the rounds already done.

    The folder is created only once the data has loaded and the model fits, so a bad input
    leaves nothing behind. ``config.toml`` and ``devices.json`` are written here, so every run
    folder (from the CLI or from Python) can be reported on and resumed.

    Examples
    --------
    >>> runner, done = prepare_run(load_config("my.toml"), Path("runs/mine"), model=MyNet())
    >>> summary = runner.run(start_after=done)
    """
    sim = build_simulation(config, model=model, data=data)
    folder = RunFolder(out) if resume else RunFolder.create(out)
    runner = Runner(sim, folder, config.train.rounds)
    done = runner.resume() if resume else 0
    folder.write_config(dump_config(config))
    folder.write_devices(runner.devices())
    if config.ledger.backend != "none":
        # imported here: web3 and py-evm take a second or two to import
        from fedledger.fl.ledger_setup import attach_ledger, deploy_ledger

        if resume:
            sim.driver = attach_ledger(sim, config, out, done)
        else:
            try:
                sim.driver = deploy_ledger(sim, config, out)
            except BaseException:
                shutil.rmtree(out, ignore_errors=True)  # a run that never started leaves nothing
                raise
    return runner, done


def check_names(config: Config) -> None:
    """Registry names, and settings that need no data to check, are checked before any data
    is read."""
    for key, name, registry in (
        ("data.name", config.data.name, DATASETS),
        ("model.name", config.model.name, MODELS),
        ("strategy.name", config.strategy.name, STRATEGIES),
        ("attack.name", config.attack.name, {"none": None, **ATTACKS}),
    ):
        if name not in registry:
            raise ConfigError(key, f"unknown name {name!r}; known: {', '.join(sorted(registry))}")
    if config.attack.honest_only and config.ledger.backend != "none":
        raise ConfigError(
            "attack.honest_only",
            "is a simulation reference (the malicious devices sit out, as if found), and the "
            'ledger protocol runs every device; set ledger.backend = "none"',
        )
