"""The run folder: everything a run leaves behind, written so a crash loses at most one round.

Layout::

    config.toml          resolved config (every key)
    devices.json         per device: name, cluster, n_samples, role
    metrics.jsonl        one JSON object per finished round
    checkpoint.safetensors + checkpoint.json   global model and server state after the last round
    model.safetensors + model.sha256           the final global model and its digest
    summary.json         dataset, final metrics, model digest, timings
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from fedledger.errors import CheckpointError

__all__ = ["RunFolder", "sha256_file"]

_STRATEGY_PREFIX = "strategy."
_GLOBAL_KEY = "global_params"


def sha256_file(path: Path) -> str:
    """sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
        """A new, empty run folder (refuses to overwrite a folder that already holds a run)."""
        if (path / "metrics.jsonl").exists() or (path / "checkpoint.json").exists():
            raise CheckpointError(
                f"{path} already holds a run; use --resume {path} to continue it or another --out"
            )
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
        keep = []
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if int(record.get("round", 0)) <= last_round:
                keep.append(line)
        _write_atomic(p, "".join(f"{line}\n" for line in keep))

    # ---- checkpoint ---------------------------------------------------------------------
    def save_checkpoint(
        self,
        round_number: int,
        global_params: torch.Tensor,
        strategy_state: dict[str, torch.Tensor],
    ) -> None:
        tensors = {_GLOBAL_KEY: global_params.contiguous()}
        tensors.update({_STRATEGY_PREFIX + k: v.contiguous() for k, v in strategy_state.items()})
        tmp = self.path / "checkpoint.safetensors.tmp"
        save_file(tensors, str(tmp))
        os.replace(tmp, self.path / "checkpoint.safetensors")
        meta = {"round": round_number, "sha256": sha256_file(self.path / "checkpoint.safetensors")}
        _write_atomic(self.path / "checkpoint.json", json.dumps(meta))

    def load_checkpoint(self) -> tuple[int, torch.Tensor, dict[str, torch.Tensor]]:
        """``(last finished round, global params, strategy state)``; round 0 if none was saved."""
        meta_path = self.path / "checkpoint.json"
        if not meta_path.exists():
            return 0, torch.empty(0), {}
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            blob = self.path / "checkpoint.safetensors"
            if sha256_file(blob) != meta["sha256"]:
                raise CheckpointError(f"{blob} does not match the digest in checkpoint.json")
            tensors = load_file(str(blob))
        except (OSError, ValueError, KeyError) as exc:
            raise CheckpointError(f"cannot read the checkpoint in {self.path}: {exc}") from None
        state = {
            k.removeprefix(_STRATEGY_PREFIX): v
            for k, v in tensors.items()
            if k.startswith(_STRATEGY_PREFIX)
        }
        return int(meta["round"]), tensors[_GLOBAL_KEY], state

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
