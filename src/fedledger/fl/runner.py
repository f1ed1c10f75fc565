"""Drives a :class:`~fedledger.fl.engine.Simulation` round by round into a run folder."""

from __future__ import annotations

import contextlib
import platform
from typing import Any, Protocol

import torch

from fedledger.errors import CheckpointError, ConfigError, FedledgerError
from fedledger.fl.detection import detection_summary, prf
from fedledger.fl.engine import Simulation
from fedledger.fl.round_data import RoundResult
from fedledger.fl.run_folder import RunFolder

__all__ = ["RoundListener", "Runner", "round_record"]

BOOK_PREFIX = "book."
PREVIOUS_KEY = "run.previous_params"
"""Checkpoint key of the global model before the last round (its step is what a stale free
rider replays and what the free-rider screen compares with)."""
"""Checkpoint keys of the reward book (beside the strategy's state)."""

_SCALARS = ("accuracy", "macro_f1", "loss", "detection_rate", "false_alarm_rate", "threshold")


class RoundListener(Protocol):
    """Receives progress (the CLI shows a bar and a table; tests record it)."""

    def on_start(self, first_round: int, last_round: int) -> None: ...

    def on_round(self, record: dict[str, Any]) -> None: ...


def round_record(result: RoundResult) -> dict[str, Any]:
    """The ``metrics.jsonl`` line of one round: scalars first, then details."""
    m = result.metrics
    record: dict[str, Any] = {"round": result.round}
    record.update({k: m[k] for k in _SCALARS if k in m})
    record["seconds"] = round(result.seconds, 6)
    record["clients"] = len(result.devices)
    record["timings"] = {k: round(v, 6) for k, v in result.timings.items()}
    record.update({k: v for k, v in m.items() if k not in record})
    return record


class Runner:
    """Runs rounds, appends metrics, checkpoints after every round and writes the final model.

    A crash loses at most the round in progress: ``metrics.jsonl`` is appended and the
    checkpoint replaced atomically after each round, and :meth:`resume` continues from the last
    checkpoint with the same per-round random streams, so the result is identical to an
    uninterrupted run.
    """

    def __init__(self, simulation: Simulation, folder: RunFolder, rounds: int) -> None:
        self.sim = simulation
        self.folder = folder
        self.rounds = rounds

    def devices(self) -> list[dict[str, Any]]:
        data = self.sim.data
        attack = self.sim.attack
        return [
            {
                "device": name,
                "cluster": cluster,
                "n_samples": len(rows),
                "role": "malicious" if d in self.sim.malicious else "honest",
                **({"attack": attack.name} if attack and d in self.sim.malicious else {}),
            }
            for d, (name, cluster, rows) in enumerate(
                zip(data.device_names, data.clusters, data.clients, strict=True)
            )
        ]

    def resume(self) -> int:
        """Load the folder's checkpoint into the simulation; return the last finished round.

        Raises
        ------
        ConfigError
            ``train.rounds`` is below the number of rounds already finished.
        CheckpointError
            The checkpoint is unreadable, tampered with, or does not fit the model.
        """
        done, params, state = self.folder.load_checkpoint()
        if done > self.rounds:
            raise ConfigError(
                "train.rounds",
                f"is {self.rounds} but {done} rounds are already finished in {self.folder.path}",
            )
        if done == 0:
            return 0
        if params.shape != self.sim.global_params.shape:
            raise CheckpointError(
                f"the checkpoint holds {params.numel()} parameters but the model has "
                f"{self.sim.global_params.numel()}"
            )
        self.sim.global_params = params
        previous = state.pop(PREVIOUS_KEY, None)
        if previous is not None:
            if previous.shape != params.shape:
                raise CheckpointError("the checkpoint's previous global model does not fit")
            self.sim.previous_params = previous
        book = {
            k.removeprefix(BOOK_PREFIX): v for k, v in state.items() if k.startswith(BOOK_PREFIX)
        }
        self.sim.strategy.load_state_dict(
            {k: v for k, v in state.items() if not k.startswith(BOOK_PREFIX)}
        )
        if self.sim.book is not None and book:
            self.sim.book.load_state_dict(book)
        self.folder.truncate_metrics(done)
        return done

    def run(self, listener: RoundListener | None = None, start_after: int = 0) -> dict[str, Any]:
        """Run rounds ``start_after + 1 .. rounds``; return the summary written to the folder."""
        if listener is not None:
            listener.on_start(start_after + 1, self.rounds)
        last = self.folder.last_metrics() if start_after else {}
        try:
            for r in range(start_after + 1, self.rounds + 1):
                last = self._round(r, listener)
        except BaseException:
            # stop the ledger's and the enclave's processes; the first error is the one
            with contextlib.suppress(Exception):
                self.sim.close()
            raise
        self.sim.close()
        return self.finish(last)

    def _round(self, r: int, listener: RoundListener | None) -> dict[str, Any]:
        result = self.sim.run_round(r)
        if not bool(torch.isfinite(result.global_params).all()):
            knobs = (
                "train.lr or train.mu" if self.sim.train_cfg.algorithm == "fedprox" else "train.lr"
            )
            raise FedledgerError(
                f"round {r}: the global model has NaN/Inf parameters (training diverged); "
                f"lower {knobs}"
            )
        record = round_record(result)
        self.folder.append_metrics(record)
        state = self.sim.strategy.state_dict()
        if self.sim.book is not None:
            state.update({BOOK_PREFIX + k: v for k, v in self.sim.book.state_dict().items()})
        if self.sim.previous_params is not None:
            state[PREVIOUS_KEY] = self.sim.previous_params.clone()  # may be the model itself
        self.folder.save_checkpoint(r, result.global_params, state)
        if listener is not None:
            listener.on_round(record)
        return record

    def detection(self) -> dict[str, Any]:
        """The run's device-level ``detection`` entry (see :mod:`fedledger.fl.detection`);
        none when the malicious devices sat out (``attack.honest_only``: nothing to find)."""
        sim = self.sim
        if sim.attack is None or sim.honest_only:
            return {}
        records = self.folder.metrics()
        rounds = {int(rec["round"]) for rec in records}
        summary = detection_summary(
            records,
            {r: sim.sample_devices(r) for r in rounds},
            sim.malicious,
            sim.attack_start,
        )
        return {} if summary is None else {"detection": summary}

    def contributions(self) -> dict[str, Any]:
        """The run's ``contributions`` entry: every device's scores summed over the rounds'
        ``contribution`` metrics, and the model evaluations they took."""
        if self.sim.incentives == "none":
            return {}
        totals: dict[int, float] = {}
        evaluations = 0
        for rec in self.folder.metrics():
            entry = rec.get("contribution")
            if entry is None:
                continue
            evaluations += int(entry["evaluations"])
            for d, score in entry["scores"].items():
                totals[int(d)] = totals.get(int(d), 0.0) + float(score)
        return {
            "contributions": {
                "method": self.sim.incentives,
                "totals": {str(d): round(v, 9) for d, v in sorted(totals.items())},
                "evaluations": evaluations,
            }
        }

    def rewards(self) -> dict[str, Any]:
        """The run's ``rewards`` entry: tokens paid, every device's balance and stake, the
        excluded devices, and how the free riders were found (over device-rounds, and the share
        of the rewards the malicious devices took)."""
        book = self.sim.book
        if book is None:
            return {}
        paid = int(book.balances.sum())
        riders: dict[int, int] = {}
        counts = {"tp": 0, "fp": 0, "fn": 0}
        detected = False
        for rec in self.folder.metrics():
            entry = rec.get("rewards")
            if entry is None:
                continue
            for d in entry["free_riders"]:
                riders[int(d)] = riders.get(int(d), 0) + 1
            if "detection" in entry:
                detected = True
                for k in counts:
                    counts[k] += int(entry["detection"][k])
        bad = sorted(self.sim.malicious)
        out: dict[str, Any] = {
            "pool": book.settings.pool,
            "paid": paid,
            "balances": {str(d): int(v) for d, v in enumerate(book.balances)},
            "stakes": {str(d): int(v) for d, v in enumerate(book.stakes)},
            "excluded": sorted(book.excluded_devices()),
            "free_rider_rounds": {str(d): n for d, n in sorted(riders.items())},
        }
        if bad:
            out["malicious_share"] = round(int(book.balances[bad].sum()) / paid, 6) if paid else 0.0
        if detected:
            out["free_rider_detection"] = {
                **counts,
                **prf(counts["tp"], counts["fp"], counts["fn"]),
            }
        return {"rewards": out}

    def finish(self, last: dict[str, Any]) -> dict[str, Any]:
        """Write the final model and ``summary.json``; return the summary."""
        sim = self.sim
        sim.layout.load_into(sim.model, sim.global_params)
        digest = self.folder.write_model(
            sim.model.state_dict(), {"format": "fedledger-model", "rounds": str(self.rounds)}
        )
        data = sim.data
        summary = {
            "dataset": data.name,
            "synthetic": data.synthetic,
            "classes": list(data.classes),
            "devices": data.n_clients,
            "features": list(data.feature_shape),
            "train_samples": len(data.y_train),
            "test_samples": len(data.y_test),
            "rounds": self.rounds,
            "task": sim.task.name,
            "engine": sim.trainer.name,
            "parameters": sim.layout.total,
            "final": {k: v for k, v in last.items() if k not in ("per_class", "confusion")},
            **self.detection(),
            **self.contributions(),
            **self.rewards(),
            "model_sha256": digest,
            "seconds_total": round(self.folder.total_seconds(), 3),
            "torch": torch.__version__,
            "python": platform.python_version(),
        }
        self.folder.write_summary(summary)
        return summary
