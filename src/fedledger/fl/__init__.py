"""Orchestration: local training, the round loop, and the run folder."""

from fedledger.fl.batched import StackedTrainer, VmapTrainer, stackable
from fedledger.fl.engine import RoundResult, Simulation, make_trainer
from fedledger.fl.params import ParamLayout
from fedledger.fl.plan import BatchPlan, make_plan
from fedledger.fl.run_folder import RunFolder
from fedledger.fl.runner import Runner
from fedledger.fl.tasks import ClassificationTask, ReconstructionTask, Task
from fedledger.fl.trainers import LocalTrainer, SequentialTrainer

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
