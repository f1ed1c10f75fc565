"""The README documents the config as it is; the public surface and the code stay tidy."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

import fedledger
from fedledger.config import Config

ROOT = Path(__file__).resolve().parents[1]


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += _keys(annotation, f"{name}.")
        else:
            out.append(prefix + name)
    return out


def test_readme_documents_every_config_key() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [key for key in _keys(Config) if f"`{key}`" not in readme]
    assert not missing, f"README's config reference lacks {missing}"


def test_readme_has_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "pip install -e . && .venv/bin/fedledger run" in readme
    assert "<!-- ci-test:begin -->" in readme


def test_public_surface_is_sorted_and_importable() -> None:
    assert fedledger.__all__ == sorted(fedledger.__all__, key=str)
    for name in fedledger.__all__:
        assert getattr(fedledger, name) is not None


def _tool(name: str) -> str | None:
    exe = Path(sys.executable).with_name(name)
    return str(exe) if exe.exists() else shutil.which(name)


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("ruff", ["check", "src", "tests", "benchmarks"]),
        ("mypy", ["--config-file", "pyproject.toml"]),
    ],
)
def test_static_checks(tool: str, args: list[str]) -> None:
    exe = _tool(tool)
    if exe is None:
        pytest.skip(f"{tool} is not installed (pip install -e '.[test]')")
    proc = subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
