"""Orchestration: local training, the round loop, the run folder, and the ledger's round.

Names are imported lazily: the network side of a round (:mod:`fedledger.fl.network`) runs in
a process of its own that needs neither torch nor the data loaders.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "BatchPlan",
    "ClassificationTask",
    "LocalTrainer",
    "ParamLayout",
    "ReconstructionTask",
    "RoundResult",
    "RunFolder",
    "Runner",
    "SequentialTrainer",
    "Simulation",
    "StackedTrainer",
    "Task",
    "VmapTrainer",
    "make_plan",
    "make_trainer",
    "stackable",
]

_LAZY = {
    "BatchPlan": "fedledger.fl.plan",
    "ClassificationTask": "fedledger.fl.tasks",
    "LocalTrainer": "fedledger.fl.trainers",
    "ParamLayout": "fedledger.fl.params",
    "ReconstructionTask": "fedledger.fl.tasks",
    "RoundResult": "fedledger.fl.round_data",
    "RunFolder": "fedledger.fl.run_folder",
    "Runner": "fedledger.fl.runner",
    "SequentialTrainer": "fedledger.fl.trainers",
    "Simulation": "fedledger.fl.engine",
    "StackedTrainer": "fedledger.fl.batched",
    "Task": "fedledger.fl.tasks",
    "VmapTrainer": "fedledger.fl.batched",
    "make_plan": "fedledger.fl.plan",
    "make_trainer": "fedledger.fl.trainer_choice",
    "stackable": "fedledger.fl.batched",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fedledger.fl' has no attribute {name!r}")
    return getattr(import_module(module), name)
