"""What code a benchmark measured: the commit and a digest of uncommitted changes under src/."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def code_state() -> dict[str, Any]:
    """The commit and a digest of the uncommitted changes under ``src/`` that were measured."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout

    diff = git("diff", "HEAD", "--", "src")
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "src_changed_files": len(git("status", "--porcelain", "--", "src").splitlines()),
        "src_diff_sha256": hashlib.sha256(diff.encode()).hexdigest()[:12],
    }
