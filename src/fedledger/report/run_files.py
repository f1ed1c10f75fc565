"""Readers for the files the engine writes into a run folder.

A run folder holds ``config.toml``, ``metrics.jsonl`` (one JSON object per finished round),
``devices.json``, ``summary.json``, ``model.safetensors`` and ``model.sha256``. Only the folder
and ``metrics.jsonl`` are required: a run that is still going (or was stopped) may not have
written the others yet, so their readers return an empty result when the file is absent. A file
that exists but cannot be parsed always raises :class:`~fedledger.errors.CheckpointError`
with a one-line message naming it.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from fedledger.digest import sha256_file
from fedledger.errors import CheckpointError

__all__ = [
    "MODEL_FILE",
    "model_digest",
    "read_config",
    "read_devices",
    "read_metrics",
    "read_model_sha256",
    "read_summary",
]

MODEL_FILE = "model.safetensors"


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The per-round records of ``metrics.jsonl``, in file order.

    Parameters
    ----------
    run_dir
        The run folder.

    Returns
    -------
    list of dict
        One dict per non-blank line (empty when no round has finished yet).

    Raises
    ------
    CheckpointError
        If the folder is missing, ``metrics.jsonl`` is missing from a folder without
        ``config.toml``, or a line other than the last is not a JSON object (a last line cut
        short by a crash is skipped); the message names the file and the 1-based line number.
    """
    folder = _run_folder(run_dir)
    path = folder / "metrics.jsonl"
    if not path.exists() and (folder / "config.toml").exists():
        return []  # the run started but no round has finished yet
    text = _read_text(path, required=True)
    lines = text.splitlines()
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break  # the last line was cut short when the run stopped
            raise CheckpointError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise CheckpointError(f"{path}:{number}: expected a JSON object per line")
        records.append(record)
    return records


def read_devices(run_dir: Path) -> list[dict[str, Any]]:
    """The device list of ``devices.json`` (empty when the file is not written yet).

    Parameters
    ----------
    run_dir
        The run folder.

    Returns
    -------
    list of dict
        One dict per device, with keys such as ``device``, ``cluster``, ``n_samples``, ``role``.

    Raises
    ------
    CheckpointError
        If the folder is missing or ``devices.json`` is not ``{"devices": [{...}, ...]}``.
    """
    path = _run_folder(run_dir) / "devices.json"
    document = _read_json_object(path)
    devices = document.get("devices", [])
    if not isinstance(devices, list) or not all(isinstance(d, dict) for d in devices):
        raise CheckpointError(f"{path}: 'devices' must be a list of objects")
    return devices


def read_summary(run_dir: Path) -> dict[str, Any]:
    """The contents of ``summary.json`` (empty when the run has not finished).

    Parameters
    ----------
    run_dir
        The run folder.

    Returns
    -------
    dict
        Keys such as ``dataset``, ``classes``, ``rounds``, ``final``, ``model_sha256``,
        ``seconds_total`` and ``synthetic``.

    Raises
    ------
    CheckpointError
        If the folder is missing or ``summary.json`` is not a JSON object.
    """
    return _read_json_object(_run_folder(run_dir) / "summary.json")


def read_config(run_dir: Path) -> dict[str, Any]:
    """The resolved configuration in ``config.toml`` (empty when the file is absent).

    Parameters
    ----------
    run_dir
        The run folder.

    Returns
    -------
    dict
        The parsed TOML document, one nested dict per section.

    Raises
    ------
    CheckpointError
        If the folder is missing or ``config.toml`` is not valid TOML.
    """
    path = _run_folder(run_dir) / "config.toml"
    text = _read_text(path, required=False)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CheckpointError(f"{path}: not valid TOML ({exc})") from exc


def read_model_sha256(run_dir: Path) -> str | None:
    """The hex digest recorded in ``model.sha256`` (``sha256sum`` format), or None if absent.

    Parameters
    ----------
    run_dir
        The run folder.

    Returns
    -------
    str or None
        The lower-case 64-character hex digest.

    Raises
    ------
    CheckpointError
        If the file exists but does not start with a 64-character hex digest.
    """
    path = _run_folder(run_dir) / "model.sha256"
    text = _read_text(path, required=False)
    if not text:
        return None
    digest = text.split()[0].lower() if text.split() else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise CheckpointError(f"{path}: expected '<sha256 hex>  {MODEL_FILE}'")
    return digest


def model_digest(run_dir: Path) -> str | None:
    """The sha256 hex digest of ``model.safetensors`` as it is on disk, or None if absent.

    Parameters
    ----------
    run_dir
        The run folder.

    Returns
    -------
    str or None
        The lower-case hex digest, computed by streaming the file.
    """
    path = _run_folder(run_dir) / MODEL_FILE
    try:
        return sha256_file(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.__class__.__name__})") from exc


def _run_folder(run_dir: Path) -> Path:
    """``run_dir`` as a Path, after checking it is an existing folder."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: run folder not found")
    return folder


def _read_text(path: Path, *, required: bool) -> str:
    """The UTF-8 text of ``path``; ``""`` for a missing optional file."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        if required:
            raise CheckpointError(f"{path}: file not found") from exc
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.__class__.__name__})") from exc


def _read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` when the file is missing."""
    text = _read_text(path, required=False)
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(document, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return document
