"""A content-addressed store of model blobs: ``<root>/<sha256>.safetensors``.

Models never go on chain; their sha256 digests do. Validators put the candidate global model
here and vote for its digest; devices fetch a blob by the digest the ledger finalised and
:meth:`ModelStore.get` refuses it unless its bytes hash to exactly that digest (model fidelity).

Blobs are safetensors files of named parameter tensors whose metadata is a single key (sorted
JSON), so the same tensors always give the same bytes and the same digest on every validator.

Examples
--------
>>> store = ModelStore(run_dir / "store")
>>> digest = store.put(encode_tensors({"w": torch.zeros(3)}))
>>> tensors = decode_tensors(store.get(digest))
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from fedledger.errors import ModelFidelityError

__all__ = ["ModelStore", "decode_tensors", "encode_tensors"]

_FORMAT = "fedledger-params/v1"
_HEX = frozenset("0123456789abcdef")


def encode_tensors(tensors: Mapping[str, torch.Tensor]) -> bytes:
    """Deterministic safetensors bytes of ``tensors`` (copied, contiguous, CPU); their order
    is kept in the metadata, so the flat parameter vector can be rebuilt from a blob."""
    plain = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    meta = json.dumps({"format": _FORMAT, "order": list(plain)})
    return save(plain, metadata={"fedledger": meta})


def decode_tensors(blob: bytes) -> dict[str, torch.Tensor]:
    """The tensors of a blob written by :func:`encode_tensors`, in their original order.

    Raises
    ------
    ModelFidelityError
        The bytes are not a safetensors file.
    """
    try:
        tensors = dict(load(blob))
        (size,) = struct.unpack("<Q", blob[:8])
        header = json.loads(blob[8 : 8 + size])
        order = json.loads(header.get("__metadata__", {}).get("fedledger", "{}")).get("order")
    except (SafetensorError, ValueError, struct.error, AttributeError) as exc:
        raise ModelFidelityError(f"model blob is not a safetensors file: {exc}") from None
    if isinstance(order, list) and sorted(order) == sorted(tensors):
        return {name: tensors[name] for name in order}
    return tensors


def _check_digest(digest: str) -> str:
    d = digest.lower().removeprefix("0x")
    if len(d) != 64 or not set(d) <= _HEX:
        raise ModelFidelityError(f"{digest!r} is not a sha256 hex digest")
    return d


class ModelStore:
    """Blobs addressed by their sha256, in one folder.

    Parameters
    ----------
    root
        The folder (created on the first :meth:`put`).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        return self.root / f"{_check_digest(digest)}.safetensors"

    def put(self, blob: bytes) -> str:
        """Store ``blob`` under its sha256 (idempotent) and return the hex digest."""
        digest = hashlib.sha256(blob).hexdigest()
        target = self.path(digest)
        if target.exists() and target.stat().st_size == len(blob):
            return digest
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, target)
        return digest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def get(self, digest: str) -> bytes:
        """The blob whose sha256 is ``digest``, checked byte for byte.

        Raises
        ------
        ModelFidelityError
            No such blob, or its bytes hash to something else (it was altered).
        """
        path = self.path(digest)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise ModelFidelityError(
                f"model {digest} is not in the model store {self.root}"
            ) from None
        actual = hashlib.sha256(blob).hexdigest()
        if actual != _check_digest(digest):
            raise ModelFidelityError(
                f"model blob {path.name} hashes to {actual}, not to the digest {digest} on the "
                f"ledger: refusing the altered model"
            )
        return blob

    def digests(self) -> list[str]:
        """Digests of every stored blob (by file name), sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name.removesuffix(".safetensors") for p in self.root.glob("*.safetensors"))
