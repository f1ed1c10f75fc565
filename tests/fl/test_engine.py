"""The round loop: determinism, resume, learning, and the run folder it leaves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from fedledger.assemble import build_simulation
from fedledger.config import load_config
from fedledger.errors import CheckpointError, ModelError
from fedledger.fl import RunFolder, Runner
from tests.conftest import make_dataset

CFG = ["train.rounds=4", "train.lr=0.1", "train.batch_size=8", "model.hidden=[16]"]


def _run(tmp: Path, overrides: list[str], rounds: int | None = None) -> dict:  # type: ignore[type-arg]
    cfg = load_config(None, [*CFG, *overrides])
    sim = build_simulation(cfg, data=make_dataset(n_clients=8))
    runner = Runner(sim, RunFolder.create(tmp), rounds or cfg.train.rounds)
    return runner.run()


def test_same_config_and_seed_give_the_same_model_digest(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", [])
    b = _run(tmp_path / "b", [])
    c = _run(tmp_path / "c", ["train.seed=1"])
    assert a["model_sha256"] == b["model_sha256"]
    assert a["model_sha256"] != c["model_sha256"]


@pytest.mark.parametrize("extra", [[], ["strategy.name=fedadam", "train.clients_per_round=3"]])
def test_resume_gives_the_uninterrupted_result(tmp_path: Path, extra: list[str]) -> None:
    whole = _run(tmp_path / "whole", extra)
    cfg = load_config(None, [*CFG, *extra])
    folder = RunFolder.create(tmp_path / "cut")
    Runner(build_simulation(cfg, data=make_dataset(n_clients=8)), folder, 2).run()
    runner = Runner(
        build_simulation(cfg, data=make_dataset(n_clients=8)), RunFolder(folder.path), 4
    )
    done = runner.resume()
    assert done == 2
    resumed = runner.run(start_after=done)
    assert resumed["model_sha256"] == whole["model_sha256"]
    rounds = [
        json.loads(x)["round"] for x in (folder.path / "metrics.jsonl").read_text().splitlines()
    ]
    assert rounds == [1, 2, 3, 4]


def test_training_learns_and_writes_the_run_folder(tmp_path: Path) -> None:
    summary = _run(tmp_path / "r", ["train.rounds=6"])
    assert summary["final"]["accuracy"] > 0.8
    files = {p.name for p in (tmp_path / "r").iterdir()}
    assert {
        "metrics.jsonl",
        "model.safetensors",
        "model.sha256",
        "summary.json",
        "checkpoint.safetensors",
    } <= files
    record = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[-1])
    for key in (
        "round",
        "accuracy",
        "macro_f1",
        "loss",
        "seconds",
        "detection_rate",
        "false_alarm_rate",
        "per_class",
        "confusion",
    ):
        assert key in record


def test_sampling_uses_clients_per_round(tmp_path: Path) -> None:
    cfg = load_config(None, [*CFG, "train.clients_per_round=3"])
    sim = build_simulation(cfg, data=make_dataset(n_clients=8))
    picks = [sim.sample_devices(r) for r in range(1, 6)]
    assert all(len(p) == 3 for p in picks)
    assert len({tuple(p) for p in picks}) > 1
    assert picks == [sim.sample_devices(r) for r in range(1, 6)]


def test_a_users_own_module_trains(tmp_path: Path) -> None:
    class Mine(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(10, 12)
            self.b = nn.Linear(12, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(torch.tanh(self.a(x)))

    cfg = load_config(None, CFG)
    sim = build_simulation(cfg, model=Mine(), data=make_dataset(n_clients=8))
    assert sim.trainer.name == "sequential"
    assert Runner(sim, RunFolder.create(tmp_path), 4).run()["final"]["accuracy"] > 0.6


def test_wrong_feature_count_is_a_model_error() -> None:
    cfg = load_config(None, CFG)
    with pytest.raises(ModelError, match="shape"):
        build_simulation(cfg, model=nn.Sequential(nn.Linear(7, 3)), data=make_dataset())


def test_an_existing_run_is_not_overwritten(tmp_path: Path) -> None:
    _run(tmp_path / "r", ["train.rounds=1"])
    with pytest.raises(CheckpointError, match="--resume"):
        RunFolder.create(tmp_path / "r")


def test_a_tampered_checkpoint_is_refused(tmp_path: Path) -> None:
    _run(tmp_path / "r", ["train.rounds=1"])
    blob = tmp_path / "r" / "checkpoint.safetensors"
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="digest"):
        RunFolder(tmp_path / "r").load_checkpoint()


def test_autoencoder_trains_on_benign_rows_and_thresholds_from_device_sums(tmp_path: Path) -> None:
    data = make_dataset(n_clients=6, n_classes=3, seed=2)
    cfg = load_config(None, [*CFG, "model.name=autoencoder", "model.hidden=[6, 3]"])
    sim = build_simulation(cfg, data=data)
    assert sim.task.name == "reconstruction"
    for rows in sim.train_rows:
        assert (data.y_train[rows] == 0).all()
    summary = Runner(sim, RunFolder.create(tmp_path), 5).run()
    final = summary["final"]
    assert final["threshold"] > 0
    assert final["detection_rate"] > 0.7
    assert final["false_alarm_rate"] < 0.5


def test_autoencoder_needs_a_benign_class() -> None:
    from dataclasses import replace

    from fedledger.errors import ConfigError

    data = replace(make_dataset(), benign_class=None)
    cfg = load_config(None, [*CFG, "model.name=autoencoder"])
    with pytest.raises(ConfigError, match=r"model\.name"):
        build_simulation(cfg, data=data)


def test_a_crash_between_metrics_and_checkpoint_resumes_to_the_same_model(tmp_path: Path) -> None:
    """Round 3 was recorded in metrics.jsonl but the process died before its checkpoint."""
    whole = _run(tmp_path / "whole", [])
    cfg = load_config(None, CFG)
    two = RunFolder.create(tmp_path / "two")
    Runner(build_simulation(cfg, data=make_dataset(n_clients=8)), two, 2).run()
    three = RunFolder.create(tmp_path / "three")
    Runner(build_simulation(cfg, data=make_dataset(n_clients=8)), three, 3).run()
    (two.path / "metrics.jsonl").write_text((three.path / "metrics.jsonl").read_text())
    runner = Runner(build_simulation(cfg, data=make_dataset(n_clients=8)), two, 4)
    assert runner.resume() == 2
    assert runner.run(start_after=2)["model_sha256"] == whole["model_sha256"]


def test_resuming_below_the_finished_rounds_is_refused(tmp_path: Path) -> None:
    from fedledger.errors import ConfigError

    _run(tmp_path / "r", ["train.rounds=3"])
    runner = Runner(
        build_simulation(load_config(None, CFG), data=make_dataset(n_clients=8)),
        RunFolder(tmp_path / "r"),
        2,
    )
    with pytest.raises(ConfigError, match="3 rounds are already finished"):
        runner.resume()


def test_no_device_with_training_rows_is_an_error() -> None:
    from dataclasses import replace

    import numpy as np

    data = make_dataset()
    data = replace(data, y_train=np.where(data.y_train == 0, 1, data.y_train))  # no benign rows
    cfg = load_config(None, [*CFG, "model.name=autoencoder"])
    with pytest.raises(ModelError, match="benign"):
        build_simulation(cfg, data=data)


def test_the_python_api_writes_a_folder_that_reports_and_resumes(tmp_path: Path) -> None:
    """The README's Python API example, with a user's own module."""
    from fedledger.assemble import prepare_run
    from fedledger.report import write_report

    def my_net() -> nn.Module:
        torch.manual_seed(3)
        return nn.Sequential(nn.Linear(10, 12), nn.Tanh(), nn.Linear(12, 3))

    data = make_dataset(n_clients=8)
    cfg = load_config(None, [*CFG, "train.rounds=2"])
    runner, done = prepare_run(cfg, tmp_path / "mine", model=my_net(), data=data)
    assert done == 0
    runner.run(start_after=done)
    assert write_report(tmp_path / "mine").is_file()
    longer = load_config(None, [*CFG, "train.rounds=3"])
    runner, done = prepare_run(longer, tmp_path / "mine", resume=True, model=my_net(), data=data)
    assert done == 2
    resumed = runner.run(start_after=done)
    straight, _ = prepare_run(longer, tmp_path / "straight", model=my_net(), data=data)
    assert resumed["model_sha256"] == straight.run()["model_sha256"]
