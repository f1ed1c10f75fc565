"""Compiled contract artifacts: load the committed ones, or recompile them from the Vyper sources.

The artifacts in ``build/<Name>.json`` ship with the package, so running fedledger needs no
compiler. ``python -m fedledger.ledger.contracts.artifacts`` regenerates them (it needs the
``vyper`` version named in :data:`VYPER_VERSION`, from the ``test`` extra).
"""

from __future__ import annotations

import hashlib
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any, TypedDict

from fedledger.errors import LedgerError

__all__ = [
    "CONTRACTS",
    "EVM_VERSION",
    "VYPER_VERSION",
    "Artifact",
    "compile_contract",
    "load_artifact",
    "source_path",
    "write_artifacts",
]

CONTRACTS = ("Registry", "Rounds", "Token")
VYPER_VERSION = "0.4.3"
EVM_VERSION = "shanghai"  # ganache/hardhat report Vyper revert reasons for this target

_HERE = Path(__file__).resolve().parent
_CACHE: dict[str, Artifact] = {}


class Artifact(TypedDict):
    """One compiled contract as stored in ``build/<Name>.json``."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    vyper_version: str
    evm_version: str
    source_sha256: str


def source_path(name: str) -> Path:
    """Path of the Vyper source of contract ``name``."""
    _check_name(name)
    return _HERE / f"{name}.vy"


def load_artifact(name: str) -> Artifact:
    """The committed artifact of contract ``name`` (cached after the first read).

    Raises
    ------
    LedgerError
        If the name is unknown or the artifact is missing from the installed package.
    """
    _check_name(name)
    if name not in _CACHE:
        ref = resources.files("fedledger.ledger.contracts").joinpath("build", f"{name}.json")
        try:
            text = ref.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise LedgerError(f"contract artifact build/{name}.json is missing") from exc
        _CACHE[name] = json.loads(text)
    return _CACHE[name]


def compile_contract(name: str) -> Artifact:
    """Compile contract ``name`` from its source with the pinned Vyper and EVM versions.

    Raises
    ------
    LedgerError
        If vyper is not installed, or is not version :data:`VYPER_VERSION`.
    """
    try:
        import vyper
        from vyper.compiler import compile_code
        from vyper.compiler.settings import Settings
    except ImportError as exc:  # pragma: no cover - vyper is a test dependency
        raise LedgerError(f"compiling contracts needs vyper=={VYPER_VERSION}") from exc
    if not vyper.__version__.startswith(VYPER_VERSION):
        raise LedgerError(
            f"compiling contracts needs vyper=={VYPER_VERSION}, not {vyper.__version__}"
        )
    source = source_path(name).read_text(encoding="utf-8")
    out = compile_code(
        source,
        contract_path=f"{name}.vy",
        output_formats=["abi", "bytecode"],
        settings=Settings(evm_version=EVM_VERSION),
    )
    return Artifact(
        name=name,
        abi=out["abi"],
        bytecode=out["bytecode"],
        vyper_version=VYPER_VERSION,
        evm_version=EVM_VERSION,
        source_sha256=hashlib.sha256(source.encode("utf-8")).hexdigest(),
    )


def write_artifacts(build_dir: Path | None = None) -> list[Path]:
    """Recompile every contract and write its artifact; returns the written paths."""
    build_dir = build_dir or _HERE / "build"
    build_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CONTRACTS:
        path = build_dir / f"{name}.json"
        path.write_text(json.dumps(compile_contract(name), indent=1) + "\n", encoding="utf-8")
        written.append(path)
    _CACHE.clear()
    return written


def _check_name(name: str) -> None:
    if name not in CONTRACTS:
        raise LedgerError(f"unknown contract {name!r}; known: {', '.join(CONTRACTS)}")


if __name__ == "__main__":
    for written_path in write_artifacts():
        sys.stdout.write(f"wrote {written_path}\n")
