"""The run folder: everything a run leaves behind, written so a crash loses at most one round.

Layout::

    config.toml          resolved config (every key)
    devices.json         per device: name, cluster, n_samples, role
    metrics.jsonl        one JSON object per finished round
    checkpoint.safetensors   global model and server state after the last round, with the
                             round number and a digest of its tensors in its metadata
    model.safetensors + model.sha256           the final global model and its digest
    summary.json         dataset, final metrics, model digest, timings
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from fedledger.config import Config
from fedledger.digest import sha256_arrays, sha256_file
from fedledger.errors import CheckpointError

__all__ = ["RunFolder"]

_STRATEGY_PREFIX = "strategy."
_GLOBAL_KEY = "global_params"
_CHECKPOINT = "checkpoint.safetensors"
_RUN_FILES = ("config.toml", "metrics.jsonl", _CHECKPOINT, "model.safetensors")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class RunFolder:
    """Reads and writes one run's files.

    Parameters
    ----------
    path
        The folder; created by :meth:`create`, or opened as it is for resuming and reporting.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, path: Path) -> RunFolder:
        """A new run folder: refuses a file, a folder holding a run, or any non-empty folder."""
        if path.exists() and not path.is_dir():
            raise CheckpointError(f"--out {path} is a file, not a folder")
        if any((path / name).exists() for name in _RUN_FILES):
            raise CheckpointError(
                f"{path} already holds a run; use --resume {path} to continue it or another --out"
            )
        if path.is_dir() and any(path.iterdir()):
            raise CheckpointError(f"--out {path} is not empty; choose a new folder for the run")
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    # ---- config and devices -------------------------------------------------------------
    def write_config(self, toml_text: str) -> None:
        _write_atomic(self.path / "config.toml", toml_text)

    def config_path(self) -> Path:
        p = self.path / "config.toml"
        if not p.is_file():
            raise CheckpointError(f"{self.path} is not a run folder: config.toml is missing")
        return p

    def config_keys_missing(self, config: Config) -> list[str]:
        """``section.key`` of every key of ``config`` (the folder's config as this version
        loads it) that the folder's config.toml does not set.

        A run writes every key of its config (:func:`~fedledger.config.dump_config`), so a key
        it lacks came with a later fedledger than the one that wrote the run, and this
        version's default for it may not be what the run did (``attack.trigger_in_bounds``
        changed the backdoor's trigger). A hand-deleted key looks the same.
        """
        stored = tomllib.loads(self.config_path().read_text(encoding="utf-8-sig"))
        return [
            f"{section}.{key}"
            for section, values in config.model_dump(mode="json", exclude_none=True).items()
            for key in values
            if key not in stored.get(section, {})
        ]

    def write_devices(self, devices: list[dict[str, Any]]) -> None:
        _write_atomic(self.path / "devices.json", json.dumps({"devices": devices}, indent=1))

    # ---- metrics ------------------------------------------------------------------------
    def append_metrics(self, record: Mapping[str, Any]) -> None:
        with (self.path / "metrics.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def truncate_metrics(self, last_round: int) -> None:
        """Drop metric lines after ``last_round`` (a round that finished after the checkpoint)."""
        p = self.path / "metrics.jsonl"
        if not p.exists():
            return
        keep = [
            line
            for line in p.read_text(encoding="utf-8").splitlines()
            if (record := _parse(line)) is not None and int(record.get("round", 0)) <= last_round
        ]
        _write_atomic(p, "".join(f"{line}\n" for line in keep))

    def metrics(self) -> list[dict[str, Any]]:
        """Every complete ``metrics.jsonl`` record, in order."""
        p = self.path / "metrics.jsonl"
        if not p.exists():
            return []
        records = (_parse(line) for line in p.read_text(encoding="utf-8").splitlines())
        return [r for r in records if r is not None]

    def last_metrics(self) -> dict[str, Any]:
        """The last complete ``metrics.jsonl`` record (empty if there is none)."""
        p = self.path / "metrics.jsonl"
        if not p.exists():
            return {}
        for line in reversed(p.read_text(encoding="utf-8").splitlines()):
            if (record := _parse(line)) is not None:
                return record
        return {}

    def total_seconds(self) -> float:
        """Sum of the ``seconds`` of every recorded round (across resumed sessions)."""
        p = self.path / "metrics.jsonl"
        if not p.exists():
            return 0.0
        records = (_parse(line) for line in p.read_text(encoding="utf-8").splitlines())
        return float(sum(r.get("seconds", 0.0) for r in records if r is not None))

    # ---- checkpoint ---------------------------------------------------------------------
    def save_checkpoint(
        self,
        round_number: int,
        global_params: torch.Tensor,
        strategy_state: dict[str, torch.Tensor],
    ) -> None:
        """Write the checkpoint as one file, atomically: it is either the old one or the new one.

        Its metadata holds the round and a sha256 over the tensors, checked on load.
        """
        tensors = {_GLOBAL_KEY: global_params.detach().contiguous()}
        tensors.update({_STRATEGY_PREFIX + k: v.contiguous() for k, v in strategy_state.items()})
        digest = sha256_arrays({k: v.numpy() for k, v in tensors.items()})
        meta = json.dumps({"round": round_number, "tensors_sha256": digest}, sort_keys=True)
        tmp = self.path / (_CHECKPOINT + ".tmp")
        save_file(tensors, str(tmp), metadata={"fedledger": meta})
        os.replace(tmp, self.path / _CHECKPOINT)

    def load_checkpoint(self) -> tuple[int, torch.Tensor, dict[str, torch.Tensor]]:
        """``(last finished round, global params, strategy state)``; round 0 if none was saved."""
        blob = self.path / _CHECKPOINT
        if not blob.exists():
            return 0, torch.empty(0), {}
        try:
            with safe_open(str(blob), framework="pt") as fh:
                meta = json.loads((fh.metadata() or {})["fedledger"])
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
            done = int(meta["round"])
            expected = str(meta["tensors_sha256"])
        except (OSError, SafetensorError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"cannot read {blob}: {exc}") from None
        if _GLOBAL_KEY not in tensors:
            raise CheckpointError(f"{blob} holds no global model")
        if sha256_arrays({k: v.numpy() for k, v in tensors.items()}) != expected:
            raise CheckpointError(f"{blob} does not match the digest recorded in it")
        state = {
            k.removeprefix(_STRATEGY_PREFIX): v
            for k, v in tensors.items()
            if k.startswith(_STRATEGY_PREFIX)
        }
        return done, tensors[_GLOBAL_KEY], state

    # ---- final model and summary --------------------------------------------------------
    def write_model(self, state_dict: Mapping[str, torch.Tensor], metadata: dict[str, str]) -> str:
        """Save the final model as safetensors; return (and record) its sha256.

        The metadata goes in as one key holding sorted JSON: safetensors writes several
        metadata keys in hash-map order, which would make the digest differ between runs.
        """
        tensors = {k: v.detach().contiguous().clone() for k, v in state_dict.items()}
        path = self.path / "model.safetensors"
        save_file(tensors, str(path), metadata={"fedledger": json.dumps(metadata, sort_keys=True)})
        digest = sha256_file(path)
        _write_atomic(self.path / "model.sha256", f"{digest}  model.safetensors\n")
        return digest

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        _write_atomic(self.path / "summary.json", json.dumps(summary, indent=1))


def _parse(line: str) -> dict[str, Any] | None:
    """A metrics line as a dict, or None for a line cut short by a crash."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None
