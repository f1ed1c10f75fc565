"""Checks of the models: every blob, the chain of bases, the final model and the checkpoint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from fedledger.audit.checks.common import ChainView, brief, guarded
from fedledger.audit.report import Check
from fedledger.errors import FedledgerError
from fedledger.fl.ledger_records import LedgerRecords
from fedledger.fl.run_folder import RunFolder
from fedledger.ledger.model_store import ModelStore, decode_tensors

__all__ = ["check_models"]


def check_models(run_dir: Path, records: LedgerRecords, chain: ChainView) -> Check:
    """Every blob hashes to its name; every round's base and finalised model are stored; the
    final model, its digest files and the checkpoint are the last finalised model."""

    def body(c: Check) -> None:
        store = ModelStore(run_dir / "store")
        for digest in store.digests():
            c.checked += 1
            try:
                store.get(digest)
            except FedledgerError as exc:
                c.fail(str(exc))
        latest = chain.genesis_model
        for r, info in sorted(chain.rounds.items()):
            if info["base"] != latest:
                c.fail(f"round {r}: opened on {brief(info['base'])}, not the last finalised model")
            wanted = [("base", info["base"])]
            if info["status"] == "finalised":
                wanted.append(("finalised model", info["model"]))
                latest = info["model"]
            for what, digest in wanted:
                if not store.has(digest.hex()):
                    c.fail(f"round {r}: the {what} {digest.hex()} is not in the model store")
        if store.has(latest.hex()):
            _check_final_files(run_dir, store, latest, max(chain.rounds, default=0), c)

    return guarded(
        Check(
            "models",
            "every model blob hashes to its digest; the final model is the last one "
            "the ledger finalised",
        ),
        body,
    )


def _check_final_files(
    run_dir: Path, store: ModelStore, latest: bytes, last_round: int, c: Check
) -> None:
    params = decode_tensors(store.get(latest.hex()))
    checkpoint = run_dir / "checkpoint.safetensors"
    if last_round and not checkpoint.is_file():
        c.fail("checkpoint.safetensors is missing")
    elif last_round:
        done, flat, _ = RunFolder(run_dir).load_checkpoint()
        expected = torch.cat([t.reshape(-1) for t in params.values()])
        if done != last_round:
            c.fail(
                f"checkpoint.safetensors is of round {done}, the chain's last round is {last_round}"
            )
        elif flat.shape != expected.shape or not bool((flat == expected).all()):
            c.fail("checkpoint.safetensors does not hold the last finalised model")
        c.checked += 1
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        return  # a run that has not finished: no final model yet
    final = run_dir / "model.safetensors"
    if not final.is_file():
        c.fail("summary.json says the run finished, but model.safetensors is missing")
        return
    c.checked += 1
    blob = final.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    if summary.get("model_sha256") != digest:
        c.fail("model.safetensors does not hash to summary.json's model_sha256")
    recorded = (run_dir / "model.sha256").read_text(encoding="utf-8").split()
    if not recorded or recorded[0] != digest:
        c.fail("model.safetensors does not hash to the digest in model.sha256")
    try:
        model = decode_tensors(blob)
    except FedledgerError as exc:
        c.fail(f"model.safetensors: {exc}")
        return
    if set(model) != set(params):
        c.fail("model.safetensors holds other tensors than the last finalised model")
        return
    for name, tensor in params.items():
        other = model[name]
        if (
            other.dtype != tensor.dtype
            or other.shape != tensor.shape
            or not bool((other == tensor).all())
        ):
            c.fail(
                f"model.safetensors: parameter {name} differs from the last finalised model "
                f"{brief(latest)}"
            )
            return
