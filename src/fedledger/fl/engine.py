"""The in-process simulation engine: one federated round, as data flows through it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from fedledger.attacks.base import AttackContext
from fedledger.config import TrainConfig
from fedledger.data.types import FederatedDataset
from fedledger.errors import ModelError
from fedledger.fl.contribution_game import enclave_incentives, round_incentives
from fedledger.fl.detection import detection_counts
from fedledger.fl.params import ParamLayout
from fedledger.fl.plan import make_plan
from fedledger.fl.probe import benign_shift, root_loss_increase
from fedledger.fl.round_data import (
    LocalUpdates,
    RoundDriver,
    RoundResult,
    round_rng,
    secure_summary,
)
from fedledger.fl.tasks import EvalData, Task
from fedledger.fl.trainers import LocalTrainer
from fedledger.incentives import RewardBook
from fedledger.strategies.base import RoundContext, Strategy

if TYPE_CHECKING:
    from fedledger.attacks.base import Attack
    from fedledger.fl.secure.base import RoundInputs, SecureAggregator, SecureOutcome

__all__ = ["VALUATION_ROWS", "Simulation"]

VALUATION_ROWS = 2000
"""Held-out rows a contribution game is valued on (:meth:`Simulation.valuation_data`)."""


class Simulation:
    """Runs federated rounds in one process, seeded and deterministic.

    One round: sample devices → every device trains from the global model (vectorised where the
    model allows) → the strategy aggregates the deltas → the new global model is evaluated.

    Parameters
    ----------
    data
        The partitioned dataset.
    model
        The network; its current parameters are the starting global model.
    task, trainer, strategy
        Objective/metrics, local-training engine and server-side aggregation.
    train
        The ``[train]`` config section (rounds, lr, FedProx μ, sampling, seed).
    """

    def __init__(
        self,
        data: FederatedDataset,
        model: nn.Module,
        task: Task,
        trainer: LocalTrainer,
        strategy: Strategy,
        train: TrainConfig,
    ) -> None:
        self.data = data
        self.model = model
        self.task = task
        self.trainer = trainer
        self.strategy = strategy
        self.train_cfg = train
        self.layout = ParamLayout.of(model)
        self.x_train = torch.from_numpy(data.x_train)
        self.y_train = torch.from_numpy(data.y_train)
        self.train_rows = [task.train_rows(rows, data.y_train) for rows in data.clients]
        if not any(len(rows) for rows in self.train_rows):
            what = "benign rows (the model trains on benign traffic only)"
            raise ModelError(
                f"no device has {what if task.name == 'reconstruction' else 'training rows'}"
            )
        self.eval_data = EvalData(
            x_test=torch.from_numpy(data.x_test),
            y_test=torch.from_numpy(data.y_test),
            x_train=self.x_train,
            y_train=self.y_train,
            train_rows=self.train_rows,
        )
        self.global_params = self.layout.flatten(dict(model.named_parameters())).detach().clone()
        self.driver: RoundDriver | None = None
        self.secure: SecureAggregator | None = None
        """The secure-aggregation mode (``None``: plain updates)."""
        self.attack: Attack | None = None
        self.malicious: frozenset[int] = frozenset()
        self.attack_start = 1
        self.honest_only = False
        """``attack.honest_only``: while the attack runs, the malicious devices sit out (a
        reference: what a defence that finds exactly them reaches)."""
        self._x_poisoned, self._y_poisoned = self.x_train, self.y_train
        self.previous_params: torch.Tensor | None = None
        """The global model of the round before the current one (free riders replay it)."""
        self.root_rows: np.ndarray | None = None
        """Training rows of the clean root dataset the validators hold (FLTrust), if any."""
        self.incentives = "none"
        """How each round's contributions are measured (``incentives.method``)."""
        self._valuation: tuple[torch.Tensor, torch.Tensor] | None = None
        self._extremes: tuple[torch.Tensor, torch.Tensor] | None = None
        self.book: RewardBook | None = None
        """Rewards, stakes and reputations (``None`` when ``incentives.method = "none"``)."""
        self._check_shapes()

    def _check_shapes(self) -> None:
        try:
            with torch.no_grad():
                self.model.eval()
                self.model(self.x_train[:2])
        except RuntimeError as exc:
            raise ModelError(
                f"the model does not accept samples of shape {self.data.feature_shape}: "
                f"{str(exc).splitlines()[0]}"
            ) from None

    def set_attack(self, attack: Attack | None, malicious: list[int], start_round: int) -> None:
        """Make ``malicious`` devices run ``attack`` from ``start_round`` on: poisoned data
        for their training rows, and/or replaced updates."""
        self.attack = attack
        self.malicious = frozenset(malicious)
        self.attack_start = start_round
        self._x_poisoned, self._y_poisoned = self.x_train, self.y_train
        if attack is not None:
            attack.setup(
                self.data.classes,
                self.data.benign_class,
                self.train_cfg.seed,
                self.data.feature_domain() if attack.needs_domain else None,
            )
        if attack is not None and malicious:
            x, y = self.data.x_train.copy(), self.data.y_train.copy()
            for d in sorted(self.malicious):
                attack.poison_data(x, y, self.train_rows[d], len(self.data.classes))
            if not np.array_equal(x, self.data.x_train):
                self._x_poisoned = torch.from_numpy(x)
            self._y_poisoned = torch.from_numpy(y)

    def _attacking(self, round_number: int) -> bool:
        return self.attack is not None and round_number >= self.attack_start

    def sample_devices(self, round_number: int) -> list[int]:
        """Devices that train this round (all with ``clients_per_round = 0``), sorted."""
        eligible = [i for i, rows in enumerate(self.train_rows) if len(rows) > 0]
        k = self.train_cfg.clients_per_round
        if k == 0 or k >= len(eligible):
            return eligible
        rng = round_rng(self.train_cfg.seed, round_number, 0)
        return sorted(int(i) for i in rng.choice(eligible, size=k, replace=False))

    def evaluate(self) -> dict[str, Any]:
        """Metrics of the current global model on the test split (and the attack's own
        metrics, such as a backdoor's success rate)."""
        self.layout.load_into(self.model, self.global_params)
        self.model.eval()
        metrics = self.task.evaluate(self.model, self.eval_data)
        metrics.update(self.attack_metrics(load=False))
        return metrics

    def attack_metrics(self, load: bool = True) -> dict[str, Any]:
        """The attack's metrics of the current global model (empty without an attack)."""
        if self.attack is None or not self.malicious:
            return {}
        if load:
            self.layout.load_into(self.model, self.global_params)
            self.model.eval()
        with torch.no_grad():
            return self.attack.evaluate(self.model, self.eval_data.x_test, self.eval_data.y_test)

    def round_context(
        self, round_number: int, order: list[int], updates: torch.Tensor | None = None
    ) -> RoundContext:
        """What the strategy may know about the round: device ids of the rows, layer sizes
        and, where the strategy uses them, FLTrust's root-data update and each of ``updates``'
        effect on the root loss and benign shift (see :mod:`fedledger.fl.probe`)."""
        reference = root_loss = shift = None
        if self.strategy.needs_reference:
            reference = self.reference_update(round_number)
        if self.strategy.needs_root_loss and updates is not None and self.root_rows is not None:
            x, y = self.root_data()
            root_loss = root_loss_increase(
                self.model, self.layout, self.task, self.global_params, updates, x, y
            )
        extremes = self.shift_inputs()
        if extremes is not None and updates is not None:
            x, y = self.root_data()
            high, groups, benign = extremes
            shift = benign_shift(
                self.model, self.layout, self.global_params, updates, x, y, high, groups, benign
            )
        return RoundContext(
            round=round_number,
            devices=tuple(order),
            reference=reference,
            sizes=self.layout.sizes,
            root_loss=root_loss,
            benign_shift=shift,
        )

    def shift_inputs(self) -> tuple[torch.Tensor, torch.Tensor, int] | None:
        """What :func:`~fedledger.fl.probe.benign_shift` needs besides the root rows — every
        column's largest training value, its one-hot group, the benign class — when the
        strategy uses it and it applies (root data, a classifier of tabular rows with a benign
        class); else ``None``."""
        if not self.strategy.needs_benign_shift or self.root_rows is None:
            return None
        benign = self.data.benign_class
        if benign is None or self.task.name != "classification":
            return None
        if self._extremes is None:  # the training rows do not change: scan them once
            domain = self.data.feature_domain()
            if domain is None:
                return None
            high = torch.from_numpy(domain.high).to(self.x_train.dtype)
            self._extremes = (high, torch.from_numpy(domain.groups))
        return (*self._extremes, benign)

    def round_inputs(self, round_number: int) -> RoundInputs:
        """The public inputs an enclave gets besides the sealed updates: the reference update
        (FLTrust), the root data (the screen scores updates on it inside, with
        :meth:`shift_inputs` for the benign shift), and with incentives the valuation rows and
        the last global step (it scores contributions)."""
        from fedledger.fl.secure.base import RoundInputs

        reference = self.reference_update(round_number) if self.strategy.needs_reference else None
        root_x = root_y = None
        if self.strategy.needs_root_loss and self.root_rows is not None:
            root_x, root_y = self.root_data()
        extremes = self.shift_inputs()
        valuation_x = valuation_y = None
        if self.book is not None:
            valuation_x, valuation_y = self.valuation_data()
        return RoundInputs(
            reference=reference,
            root_x=root_x,
            root_y=root_y,
            valuation_x=valuation_x,
            valuation_y=valuation_y,
            step=self.last_step() if self.book is not None else None,
            shift=extremes,
        )

    def last_step(self) -> torch.Tensor | None:
        """The last global step ``θ_t − θ_{t−1}`` (``None`` before the first round ends)."""
        if self.previous_params is None:
            return None
        return self.global_params - self.previous_params

    def root_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The validators' root rows (features, clean labels); empty without root data."""
        rows = self.root_rows if self.root_rows is not None else np.zeros(0, dtype=np.int64)
        idx = torch.from_numpy(rows)
        return self.x_train[idx], self.y_train[idx]

    def valuation_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows contribution games are valued on: at most :data:`VALUATION_ROWS` of the
        held-out split, drawn once with ``default_rng([seed, 0, 13])`` (every validator holds
        the same ones, so all of them value a round alike)."""
        if self._valuation is None:
            n = len(self.eval_data.y_test)
            order = np.random.default_rng([self.train_cfg.seed, 0, 13]).permutation(n)
            idx = torch.from_numpy(np.sort(order[:VALUATION_ROWS]))
            self._valuation = (self.eval_data.x_test[idx], self.eval_data.y_test[idx])
        return self._valuation

    def reference_update(self, round_number: int) -> torch.Tensor:
        """FLTrust's server update: the global model trained on the root rows with the
        devices' settings (``root_rows`` must be set), as ``local − global``."""
        if self.root_rows is None or len(self.root_rows) == 0:
            raise ModelError(f"{self.strategy.name} needs root data, and none is set")
        cfg = self.train_cfg
        rng = round_rng(cfg.seed, round_number, 6)
        plan = make_plan([self.root_rows], cfg.batch_size, cfg.local_epochs, [rng])
        trained = self.trainer.train(
            self.global_params, plan, self.x_train, self.y_train, cfg.lr, 0.0
        )
        return (trained - self.global_params)[0]

    def aggregate(self, round_number: int, local: LocalUpdates) -> list[int]:
        """Aggregate the round's plain updates into the global model; return the devices the
        strategy flagged."""
        context = self.round_context(round_number, local.order, local.updates)
        self.global_params = self.strategy.aggregate(
            self.global_params, local.updates, local.weights, context
        )
        return sorted(d for i in self.strategy.flagged if (d := local.order[i]) >= 0)

    def train_devices(self, round_number: int) -> LocalUpdates:
        """Sample this round's devices and train each from the global model (no aggregation)."""
        cfg = self.train_cfg
        t0 = time.perf_counter()
        devices = self.sample_devices(round_number)
        if self.book is not None:  # devices excluded for free riding are not asked any more
            excluded = self.book.excluded_devices()
            devices = [d for d in devices if d not in excluded]
        rows = [self.train_rows[d] for d in devices]
        rngs = [round_rng(cfg.seed, round_number, 1, d) for d in devices]
        plan = make_plan(rows, cfg.batch_size, cfg.local_epochs, rngs)
        mu = cfg.mu if cfg.algorithm == "fedprox" or self.strategy.proximal else 0.0
        attacking = self._attacking(round_number)
        x = self._x_poisoned if attacking else self.x_train
        y = self._y_poisoned if attacking else self.y_train
        trained = self.trainer.train(self.global_params, plan, x, y, cfg.lr, mu)
        updates = trained - self.global_params
        order = [devices[i] for i in plan.order]
        if attacking and self.attack is not None:
            bad = [k for k, d in enumerate(order) if d in self.malicious]
            if bad:
                ctx = AttackContext(
                    round=round_number,
                    devices=tuple(order),
                    global_params=self.global_params,
                    previous_params=self.previous_params,
                    rng=round_rng(cfg.seed, round_number, 4),
                )
                self.attack.poison_updates(updates, bad, ctx)
        weights = torch.tensor([len(self.train_rows[d]) for d in order], dtype=updates.dtype)
        sybils: list[tuple[int, torch.Tensor]] = []
        if attacking and self.attack is not None and self.attack.clones:
            for k, d in enumerate(order):
                if d in self.malicious:
                    sybils += [(d, updates[k].clone()) for _ in range(self.attack.clones)]
        return LocalUpdates(devices, order, updates, weights, time.perf_counter() - t0, sybils)

    def run_round(self, round_number: int) -> RoundResult:
        """Run round ``round_number`` (1-based) and make its model the global model."""
        if self.driver is not None:
            return self.driver.run_round(self, round_number)
        t0 = time.perf_counter()
        self.begin_secure_round(round_number)
        setup = time.perf_counter() - t0
        local = self.train_devices(round_number)
        if self.honest_only and self._attacking(round_number):
            local = local.without(self.malicious)
        t1 = time.perf_counter()
        secure: dict[str, Any] | None = None
        outcome: SecureOutcome | None = None
        base, step = self.global_params, self.last_step()
        if self.secure is None:
            flagged = self.aggregate(round_number, local.with_sybils())
        else:
            outcome = self.protected_round(round_number, local)
            self.global_params, self.strategy = outcome.params, outcome.strategy
            flagged = outcome.flagged
            secure = secure_summary(self.secure.mode, outcome)
        self.previous_params = base
        t2 = time.perf_counter()
        metrics = self.evaluate()
        if secure is not None:
            metrics["secure"] = secure
        metrics.update(self.screening(round_number, local.devices, flagged))
        if self.book is not None:
            if outcome is not None:  # the enclave scored the updates it opened
                incentives = enclave_incentives(self, round_number, outcome, local.devices)
            else:
                screened = set(flagged)
                incentives = round_incentives(
                    self,
                    round_number,
                    base,
                    self.global_params,
                    local.order,
                    local.updates,
                    local.weights,
                    local.devices,
                    [d for d in local.order if d not in screened],
                    step,
                )
            self.book.apply(local.devices, incentives.aggregated, incentives.settlement)
            metrics.update(incentives.metrics())
        t3 = time.perf_counter()
        return RoundResult(
            round=round_number,
            global_params=self.global_params,
            devices=local.devices,
            metrics=metrics,
            seconds=setup + local.seconds + t3 - t1,
            timings={
                **({"setup": setup} if self.secure is not None else {}),
                "train": local.seconds,
                "aggregate": t2 - t1,
                "evaluate": t3 - t2,
            },
        )

    def screening(
        self, round_number: int, devices: list[int], flagged: list[int]
    ) -> dict[str, Any]:
        """The round's ``screen`` metrics entry: the devices the strategy flagged and, while an
        attack runs with the malicious devices taking part, the round's detection precision
        and recall over its devices."""
        out: dict[str, Any] = {}
        if flagged or self.strategy.screens:
            out["screen"] = {"flagged": sorted(flagged)}
            if self._attacking(round_number) and self.malicious and not self.honest_only:
                out["screen"].update(detection_counts(devices, flagged, self.malicious))
        return out

    def protected_round(self, round_number: int, local: LocalUpdates) -> SecureOutcome:
        """Without a ledger: every device protects its update, the aggregator aggregates."""
        from fedledger.fl.secure.base import Submission

        assert self.secure is not None
        weights = [int(w) for w in local.weights]
        matrix = local.updates.detach().numpy()
        submissions = []
        for k, d in enumerate(local.order):
            payload = self.secure.protect(round_number, d, matrix[k])
            if payload is not None:
                submissions.append(Submission(d, payload, weights[k]))
        if self.secure.mode == "enclave":  # sealing needs no key agreement: clones get in
            weight = dict(zip(local.order, weights, strict=True))
            for d, row in local.sybils:
                sealed = self.secure.protect(round_number, d, row.detach().numpy())
                if sealed is not None:
                    submissions.append(Submission(-1, sealed, weight[d]))
        return self.secure.aggregate(
            round_number,
            self.global_params,
            self.strategy,
            submissions,
            self.round_inputs(round_number),
        )

    def begin_secure_round(self, round_number: int) -> None:
        """Before the devices train: the secure-aggregation mode's set-up for this round's
        devices (attestation, or SecAgg+ key agreement in the background)."""
        if self.secure is not None:
            devices = self.sample_devices(round_number)
            counts = [len(self.train_rows[d]) for d in devices]
            self.secure.begin_round(round_number, devices, counts)

    def close(self) -> None:
        """Stop the ledger's network process and the enclave, if any."""
        try:
            if self.driver is not None:
                self.driver.close()
        finally:
            if self.secure is not None:
                self.secure.close()
